"""Markdown injection (issue 17 item 3): report.md and assessment.md rendered by a CommonMark
renderer (markdown-it-py, raw HTML allowed as in GitHub, GitLab, most wikis) hold no raw HTML
and no link other than http(s), whatever the CRM holds.

Two hostile exports audited through the CLI: a CSV export whose names, accounts, owners, stages
and url column carry HTML, `>` / `)` that would end a link, and javascript: / data: URLs; and a
Salesforce export whose Id column holds the same (record links are built from the Id).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from markdown_it import MarkdownIt

from auditor.app.cli import main
from tests.security.matrix import HARDENING, record

DATA = Path(__file__).parent / "data" / "hostile_md"
SCENARIOS = ["md-injection-csv", "md-injection-salesforce-export-id"]

SOURCES = {
    "md-injection-csv": f"""type = "csv"
name = "hostile"
stage_map_default = "salesforce"
opportunities = "{DATA / 'deals.csv'}"
""",
    "md-injection-salesforce-export-id": f"""type = "salesforce_export"
name = "hostile-sf"
path = "{DATA / 'sf'}"
instance_url = "https://acme.my.salesforce.com"
""",
}


def tokens(md: MarkdownIt, text: str) -> list:
    out = []
    for t in md.parse(text):
        out.append(t)
        out += t.children or []
    return out


def problems(text: str) -> tuple[list[str], list[str]]:
    """(raw HTML pieces, links that are not http(s)) in the rendered Markdown."""
    md = MarkdownIt("commonmark", {"html": True})
    html, links = [], []
    for t in tokens(md, text):
        if t.type in ("html_block", "html_inline"):
            html.append(t.content)
        if t.type == "link_open":
            href = t.attrGet("href") or ""
            links.append(href)
        if t.type == "image":
            html.append(f"image {t.attrGet('src')}")
    bad_links = [h for h in links if not h.startswith(("http://", "https://"))]
    rendered = md.render(text)
    for tag in ("<script", "<img", "<b ", "<iframe"):
        if tag in rendered:
            html.append(f"rendered {tag}")
    return html, bad_links


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_markdown_reports_have_no_raw_html_and_only_http_links(tmp_path: Path, scenario) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text(f"""[audit]
as_of = 2024-06-01
[source]
{SOURCES[scenario]}
[report]
formats = ["md"]
assessment = true
[history]
enabled = false
""", encoding="utf-8")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--config", str(cfg), "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    files = [out / "report.md", out / "assessment.md"]
    md = MarkdownIt("commonmark", {"html": True})
    links: list[str] = []
    for f in files:
        text = f.read_text(encoding="utf-8")
        raw_html, bad_links = problems(text)
        assert raw_html == [], f.name
        assert bad_links == [], f.name
        links += [t.attrGet("href") for t in tokens(md, text) if t.type == "link_open"]
    report = (out / "report.md").read_text(encoding="utf-8")
    shown = md.render(report)
    if scenario == "md-injection-csv":
        # the text is still there, shown as text
        assert "Deal&gt; &lt;img src=x onerror=alert(1)&gt;" in shown
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
        assert "Acme &amp;lt;script&amp;gt;" in shown  # an entity stays literal text
        # links: only the http(s) ones, each whole (percent-encoded, not cut short)
        assert sorted(set(links)) == [
            "https://crm.example/M-1%3E%3Cimg%20src=x%20onerror=alert%282%29%3E",
            "https://crm.example/M-3?a=1&b=%282%29",
            "https://crm.example/M-4%22%29%3Cscript%3Ex%3C/script%3E",
        ]
    else:
        # a record link only for the id that is a Salesforce id
        assert sorted(set(links)) == [
            "https://acme.my.salesforce.com/lightning/r/Opportunity/0068d00000OpA01AAA/view"]
        assert "2 Id values are not 15- or 18-character Salesforce ids" in report
    record(HARDENING, scenario, "report.md, assessment.md",
           "CRM text with <script>, <img onerror>, `>` / `)` ending a link, javascript: and "
           "data: URLs" + (" in the Id column (record links)" if "salesforce" in scenario else ""),
           "no raw HTML, only http(s) links (markdown-it-py, CommonMark with HTML on)",
           f"exit 0; 0 html tokens; links: {len(set(links))} distinct, all http(s)")
