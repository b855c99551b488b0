"""Files written by write_reports: names, HTML safety, escaping, content, JSON schemas."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import jsonschema
import lxml.html
import pytest

from reports.machine import load_schema, violations_records, write_violations_json
from reports.render import write_reports
from tests.reports.reports_fixture import EVIL_NAME, make_run

EXPECTED_FILES = [
    "report.html",
    "report.md",
    "report.txt",
    "appendix.html",
    "explorer.html",
    "assessment.html",
    "assessment.md",
    "digests/owner-O1.html",
    "digests/owner-O1.txt",
    "digests/owner-O2.html",
    "digests/owner-O2.txt",
    "digests/owner-O3.html",
    "digests/owner-O3.txt",
    "digests/manager-M1.html",
    "digests/manager-M1.txt",
    "violations.csv",
    "process_findings.csv",
    "violations.json",
    "process_findings.json",
    "metrics.json",
    "run.json",
]
# e-mail HTML: no script; explorer.html is for the browser (tests/reports/test_explorer.py)
HTML_FILES = [f for f in EXPECTED_FILES if f.endswith(".html") and f != "explorer.html"]


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture run's output folder, written once: the tests using it only read it."""
    tmp_path = tmp_path_factory.mktemp("outputs")
    folder = tmp_path / "out"
    written = write_reports(make_run(tmp_path), folder)
    assert [str(p.relative_to(folder)) for p in written] == EXPECTED_FILES
    return folder


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("name", HTML_FILES)
def test_html_parses_has_no_script_and_compact_css(out: Path, name: str) -> None:
    text = (out / name).read_text(encoding="utf-8")
    doc = lxml.html.document_fromstring(text)
    assert doc.find("body") is not None
    assert doc.xpath("//script") == []
    assert "<script" not in text.lower()
    assert doc.xpath("//link") == []  # no external stylesheet
    assert doc.xpath("//img") == [] and doc.xpath("//iframe") == []  # no external assets
    assert "javascript:" not in " ".join(doc.xpath("//a/@href"))
    # one <style> block in <head> (Gmail keeps it) with the phone layout ...
    styles = doc.xpath("//head/style")
    assert len(styles) == 1 and doc.xpath("//body//style") == []
    assert "@media screen and (max-width:600px)" in styles[0].text
    # ... not a style attribute per element (css-inline made the demo e-mail 267 KB)
    assert len(doc.xpath("//*[@style]")) <= 12
    # what Outlook needs inline: the font on the outer cell, the fixed width in an MSO table
    assert "font-family:Arial" in doc.xpath("//table[@class='wrap']//td")[0].get("style")
    assert '<!--[if mso]><table role="presentation" width="' in text


def test_malicious_names_are_escaped(out: Path) -> None:
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert EVIL_NAME not in html
    # the deal with a javascript: URL is shown without a link
    doc = lxml.html.document_fromstring(html)
    hrefs = doc.xpath("//a/@href")
    assert "https://crm.example.com/opp/D1" in hrefs and not any("alert" in h for h in hrefs)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "\\<script\\>alert(1)\\</script\\>" in md and EVIL_NAME not in md
    assert "Globex \\| Expansion \\*big\\*" in md  # a pipe cannot break a Markdown table


def test_first_report_acceptance_content(out: Path) -> None:
    """Issue 2: totals, by rule, by owner, deals with rule/message/fix, coverage, run facts."""
    def text_of(name: str) -> str:
        html = lxml.html.document_fromstring((out / name).read_text(encoding="utf-8"))
        return " ".join(" ".join(html.find("body").itertext()).split())

    text = text_of("report.html")
    for needle in [
        "58.3 hygiene score / 100",
        "€162,000 open amount at risk",
        "4 deals to fix now",
        "— new / resolved since the last run",
        "Basis: the score is computed over 12 checks on 6 deals (92% of applicable checks "
        "evaluable), to-dos only (open deals, and close-outs of deals closed in the last 90 "
        "days); 3 deals with a to-do.",
        "At risk: €162,000 on open deals with a finding to fix now.",
        "Fix these first Deal Owner Stage Amount What is wrong, and how to fix it "
        "Acme – Renewal Acme Inc Owner: Alice Owner Stage: Proposal Amount: €50,000 error open "
        "in proposal with no next step Fix: Agree the next step with the buyer and record it.",
        "What goes wrong most Rule Findings error Test no next step TS01 Findings: 3 "
        "warning Test big deal TS02 Findings: 2",
        "Score by team Team Score Findings SMB Score: 0.0 Findings: 1 "
        "Enterprise Score: 62.5 Findings: 4",
        "Everything else: findings explorer (all 5 findings",
    ]:
        assert needle in text, needle
    assert "TS03" not in text  # a rule without findings is not in the e-mail
    assert text.startswith(  # the preview line, then the title
        "Hygiene score 58.3 · €162,000 open at risk · 4 deals to fix now "
        "Pipeline hygiene audit fixture · as of 2026-11-20"
    )
    text = text_of("appendix.html")
    for needle in [
        "TS01 Test no next step Open deal with no next step. error To-dos: 3 "
        "Process history: 0 3 of 6 deals (50.0 %)",
        "TS02 Test big deal Large open deal that needs a review. warning To-dos: 2 "
        "Process history: 0 2 of 6 deals (33.3 %)",
        "TS03 Test needs due date Deal with a past next-step date. info To-dos: 0 "
        "Process history: 0 none evaluated",
        "Alice Owner Enterprise 3 2 50.0",
        "Bob Owner Enterprise 1 1 50.0",
        "Carol NoEmail SMB 1 1 0.0",
        "TS03 Test needs due date 0 / 6 6 source does not provide next step due (6)",
        "Source fixture (csv)",
        "Records 6 opportunities",
        "Rejected rows 1",
        "Duration 0.875 s",
        "opportunities.csv row 8 stage 'Zombie' is not mapped",
    ]:
        assert needle in text, needle
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "| TS01 test-no-next-step | error | 3 |" in md
    assert "- Records: 6 opportunities, 0 stage-history rows; rejected rows: 1" in md


def test_worst_deals_first(audit_run) -> None:
    from reports.context import report_context

    ctx = report_context(audit_run)
    # D1 has an error and a warning; then errors by amount (D5 20k, D2 12k); D3 warning only
    assert [d["id"] for d in ctx["deals"]] == ["D1", "D5", "D2", "D3"]
    assert [f["rule_code"] for f in ctx["deals"][0]["findings"]] == ["TS01", "TS02"]


def test_lists_are_capped_with_the_full_list_in_the_csv(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"report": {"max_deals": 2}})
    out = tmp_path / "capped"
    write_reports(run, out)
    text = (out / "report.txt").read_text(encoding="utf-8")
    assert "DEALS TO FIX, WORST FIRST (2 of 4; all in violations.csv)" in text
    with (out / "violations.csv").open(encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == 5


def test_violations_csv_and_json_hold_every_finding(out: Path) -> None:
    rows = json.loads((out / "violations.json").read_text(encoding="utf-8"))
    assert [(r["rule_code"], r["opportunity_id"]) for r in rows] == [
        ("TS01", "D1"),
        ("TS01", "D2"),
        ("TS01", "D5"),
        ("TS02", "D1"),
        ("TS02", "D3"),
    ]
    assert rows[1]["opportunity_name"] == EVIL_NAME and rows[0]["amount"] == 50000.0
    assert rows[0]["stage"] == "proposal" and len(rows[0]["fingerprint"]) == 16
    with (out / "violations.csv").open(encoding="utf-8") as fh:
        assert [r["opportunity_id"] for r in csv.DictReader(fh)] == ["D1", "D2", "D5", "D1", "D3"]


@pytest.mark.parametrize("name", ["violations", "metrics", "run"])
def test_json_outputs_validate_against_the_shipped_schema(out: Path, name: str) -> None:
    data = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
    validator(name).validate(data)


def test_schemas_reject_wrong_output() -> None:
    bad_violation = [{"rule_code": "TS01", "severity": "fatal"}]
    assert not validator("violations").is_valid(bad_violation)
    assert not validator("metrics").is_valid(
        {"schema_version": "1.0", "hygiene_score": {"name": "h", "org": 120}}
    )
    assert not validator("metrics").is_valid(
        {
            "schema_version": "1.0",
            "hygiene_score": {
                "name": "h",
                "definition": "d",
                "org": 1,
                "by_team": {},
                "by_owner": {},
            },
            "win_rate": {"name": "win_rate"},
        }
    )
    for name in ("violations", "metrics", "run"):
        assert load_schema(name)["$id"].endswith(":1.0")


def test_run_json_facts(out: Path) -> None:
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["schema_version"] == "1.0" and run["status"] == "ok" and run["score"] == 58.3
    facts = run["facts"]
    assert (facts["source"], facts["records"], facts["rejected_rows"]) == ("fixture", 6, 1)
    assert facts["duration_s"] == 0.875 and run["history"] is None and run["delivery"] == []
    assert "report.html" in run["outputs"] and "digests/owner-O1.txt" in run["outputs"]


def test_metrics_json_is_plain_json_with_version(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.metrics.cycle_length.values["x"] = float("nan")
    write_reports(run, tmp_path / "o")
    data = json.loads((tmp_path / "o" / "metrics.json").read_text(encoding="utf-8"))
    assert data["schema_version"] == "1.0" and data["cycle_length"]["x"] is None
    assert data["win_rate"]["by_period"]["2026-Q3"]["rate"] == 0.75


def test_owner_digest_has_only_that_owners_deals(out: Path) -> None:
    alice = (out / "digests" / "owner-O1.txt").read_text(encoding="utf-8")
    assert "Alice Owner: 2 deals need you" in alice
    assert "Acme – Renewal" in alice and "Globex | Expansion *big*" in alice
    assert "Umbrella" not in alice and "alert(1)" not in alice and "Initech" not in alice
    team = (out / "digests" / "manager-M1.txt").read_text(encoding="utf-8")
    assert "TEAM ROLL-UP: MARIA MANAGER'S TEAM" in team
    assert "Alice Owner                      3 findings on    2 deals, score 50.0" in team
    assert "Umbrella" not in team  # Carol is not in Maria's team


def test_history_renders_trend_and_changes(audit_run_with_history, tmp_path: Path) -> None:
    write_reports(audit_run_with_history, tmp_path / "h")
    text = (tmp_path / "h" / "report.txt").read_text(encoding="utf-8")
    assert "Hygiene score: 58.3 / 100 (+3.3 since 2026-11-19)" in text
    assert "Since the last run: 1 new, 2 resolved, 4 still open" in text
    assert "  2026-11-19     55.0  ###########........." in text
    run = json.loads((tmp_path / "h" / "run.json").read_text(encoding="utf-8"))
    assert run["history"] == {
        "previous_run": {
            "id": 7,
            "finished_at": "2026-11-19T06:01:00+00:00",
            "score": 55.0,
            "as_of": None,  # the fixture's history predates the as-of field
        },
        "new": 1,
        "resolved": 2,
        "persisting": 4,
    }


def test_user_templates_override_and_extend_the_shipped_ones(tmp_path: Path) -> None:
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    (tdir / "report.html.j2").write_text(
        '{% extends "default:report.html.j2" %}'
        "{% block header %}<h1>ACME pipeline review</h1>{{ super() }}{% endblock %}"
    )
    (tdir / "base.html.j2").write_text(
        '{% extends "default:base.html.j2" %}{% block footer %}ACME Sales Ops{% endblock %}'
    )
    (tdir / "report.txt.j2").write_text("Score {{ score }} for {{ facts.source }}\n")
    run = make_run(tmp_path, {"report": {"template_dir": "tpl"}})
    write_reports(run, tmp_path / "o")
    html = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert "ACME pipeline review" in html and "What goes wrong most" in html  # extended
    assert "ACME Sales Ops" in html and "Generated by crm-hygiene-auditor" not in html
    assert (tmp_path / "o" / "report.txt").read_text() == "Score 58.3 for fixture\n"
    assert "ACME Sales Ops" in (tmp_path / "o" / "digests" / "owner-O1.html").read_text()


def test_demo_run_outputs_validate_and_render_every_metric(tmp_path: Path) -> None:
    """The real metrics module's output fits the schema and every metric reaches the report."""
    from datetime import date

    from auditor.app.run import execute
    from auditor.config import default_config

    run = execute(default_config(), out_dir=tmp_path, as_of=date(2026, 11, 26), deliver=False)
    for name in ("violations", "metrics", "run"):
        validator(name).validate(json.loads((tmp_path / f"{name}.json").read_text("utf-8")))
    html = lxml.html.document_fromstring((tmp_path / "appendix.html").read_text("utf-8"))
    headings = [h.text_content() for h in html.xpath("//h3")]
    for name in run.metrics.metric_names:
        title = name.replace("_", " ").capitalize()
        assert title in headings, title
    assert "{" not in " ".join(html.xpath("//td/text()"))  # no raw JSON left in cells


def test_violations_json_streamed_in_chunks_is_the_same_list(audit_run, tmp_path: Path) -> None:
    """Streamed two rows at a time (chunk edges, the last one short), the file parses to the
    same objects as one serialization of the whole frame, is valid against its schema, and is
    unindented."""
    v = audit_run.result.violations
    assert len(v) == 5
    whole = json.loads(json.dumps(violations_records(v)))
    for chunk in (2, 5, 100):
        path = write_violations_json(v, tmp_path / f"v{chunk}.json", chunk_rows=chunk)
        text = path.read_text(encoding="utf-8")
        assert json.loads(text) == whole and "\n" not in text, chunk
        jsonschema.validate(json.loads(text), load_schema("violations"))
    empty = write_violations_json(v.iloc[:0], tmp_path / "empty.json", chunk_rows=2)
    assert json.loads(empty.read_text()) == []
