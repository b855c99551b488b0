"""Owner digests rendered in bulk (reports/digests.py) show exactly what the Jinja macros render
for the same owner's deals: for every owner of the demo (with history, so NEW marks show), with a
small deal cap, and on CRM text built to break escaping and one-line rules."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from auditor.app.run import execute
from auditor.config import parse_config
from auditor.results import AuditRun
from reports.context import worst_deals
from reports.digests import _tidy, digest_contexts, digest_rows, render_digest
from reports.htmlmail import compact_html
from reports.render import render, run_environment
from tests.reports.reports_fixture import make_run

HTML_MACRO = '{% import "_macros.html.j2" as ui %}{{ ui.deal_rows(deals, show_owner=False) }}'
TEXT_MACRO = (
    '{% autoescape false %}{% import "_macros.txt.j2" as ui %}'
    "{{ ui.deal_list(deals, show_owner=False) }}{% endautoescape %}"
)


def by_macros(run: AuditRun, owner: str) -> tuple[str, str, int]:
    """The reference: the per-owner path (worst_deals + the shipped Jinja macros)."""
    v = run.result.violations
    mine = v[v["owner_id"].astype(str) == owner]
    deals, n = worst_deals(run, mine, run.config.report.max_deals)
    env = run_environment(run)
    html = env.from_string(HTML_MACRO).render(deals=deals) if deals else ""
    text = env.from_string(TEXT_MACRO).render(deals=deals)
    return html, text, n


def assert_same_as_macros(run: AuditRun) -> int:
    rows = digest_rows(run)
    v = run.result.violations
    assert rows.owners == sorted(v["owner_id"].dropna().astype(str).unique())
    for i, owner in enumerate(rows.owners):
        html, text, n = by_macros(run, owner)
        # the bulk rows come compacted (a name's line breaks as compact_html leaves them)
        assert str(rows.deal_rows(i)) == (compact_html(html) if html else ""), owner
        assert rows.deal_list(i) == text, owner
        assert rows.flagged[i] == n, owner
        assert rows.total[i] == int((v["owner_id"].astype(str) == owner).sum()), owner
    return len(rows.owners)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> AuditRun:
    root = tmp_path_factory.mktemp("bulk")
    cfg = parse_config(
        {"source": {"type": "demo"}, "history": {"path": str(root / "h.sqlite")},
         "report": {"formats": ["txt"], "assessment": False}},
        origin="<bulk>",
    )
    execute(cfg, out_dir=root / "out", as_of=date(2026, 11, 25), deliver=False)
    return execute(cfg, out_dir=root / "out", as_of=date(2026, 11, 26), deliver=False)


def assert_pages_whole(run: AuditRun) -> None:
    """Pages assembled around the list (render_digest) are the pages rendered whole."""
    env = run_environment(run)
    for name, html in (("digest.html.j2", True), ("digest.txt.j2", False)):
        template = env.get_template(name)
        for ctx in digest_contexts(run):
            assert render_digest(template, ctx, html) == _tidy(template.render(ctx), html)


def test_demo_digests_match_the_macros(demo_run: AuditRun) -> None:
    assert demo_run.history is not None and demo_run.history.new_items  # NEW marks exercised
    assert assert_same_as_macros(demo_run) >= 10
    assert_pages_whole(demo_run)


def test_capped_digests_match_the_macros(demo_run: AuditRun) -> None:
    demo_run.config.report.max_deals = 3  # a few owners have more flagged deals than that
    try:
        rows = digest_rows(demo_run)
        assert (rows.flagged > 3).any() and rows.shown.max() == 3
        assert_same_as_macros(demo_run)
        assert_pages_whole(demo_run)  # with the "Showing 3 of n deals" line after the list
    finally:
        demo_run.config.report.max_deals = 50


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "Eve\r\nBcc: evil@example.com",
    "two\u2028lines  and\ttabs\x00 ",
    "{{ 7*7 }}{% raw %}",
    "Tom & Jerry's \"deal\"",
    "Multi\n   line\n\n\tname\n",
    "",
    " lead space",
]
URLS = [
    "javascript:alert(1)",
    "https://crm.example.com/o?a=1&b=<2>",
    "HTTPS://CRM.example.com/x",
    " https://crm.example.com/padded ",
    "http://[broken",
    "https://crm.example.com/opp/D1",
]


def test_hostile_crm_text_matches_the_macros_and_is_escaped(tmp_path: Path) -> None:
    run = make_run(tmp_path, owner_names={"O1": HOSTILE[0], "O2": HOSTILE[1]})
    v = run.result.violations
    k = np.arange(len(v))
    pick = lambda vals: [vals[i % len(vals)] for i in k]  # noqa: E731
    v["opportunity_name"] = pick(HOSTILE[5:] + HOSTILE[:5])
    v["account_name"] = pick(HOSTILE[::-1])
    v["message"] = pick(HOSTILE[2:] + ["'still_open' in closed_won"])
    v["url"] = pick(URLS)
    assert_same_as_macros(run)
    assert_pages_whole(run)
    env = run_environment(run)
    for ctx in digest_contexts(run):
        html = render(env, "digest.html.j2", ctx)
        text = render(env, "digest.txt.j2", ctx)
        for raw in ("<script>alert", "<img src=x", "{{ 7*7 }}<", "href=\"javascript"):
            assert raw not in html, (ctx["owner_id"], raw)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html or ctx["owner_id"] != "O1"
        assert "Bcc: evil@example.com" not in text.replace("Eve Bcc:", "")  # one line


def test_rows_formatted_in_small_chunks_are_the_same(
    demo_run: AuditRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of owners (bounded memory at 1M) give the same rows as one chunk."""
    import reports.digests

    monkeypatch.setattr(reports.digests, "CHUNK_ROWS", 7)
    rows = digest_rows(demo_run)
    assert len(rows.chunk_first) > 10
    assert_same_as_macros(demo_run)
    assert_pages_whole(demo_run)
