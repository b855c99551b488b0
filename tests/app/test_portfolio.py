"""[[sources]]: three sources (demo, CSV, Salesforce export) audited in parallel processes, the
portfolio overview equal to the per-source reports, a broken source giving partial success."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CSV_DATA = ROOT / "tests" / "connectors" / "csv" / "data"
SF_EXPORT = ROOT / "tests" / "connectors" / "salesforce" / "data" / "export"
CSV_COLUMNS = {
    "id": "Deal ID", "name": "Deal Name", "account_name": "Account", "owner_id": "Owner",
    "source_stage": "Stage", "amount": "Amount", "currency": "Currency",
    "probability": "Probability", "forecast_category": "Forecast", "close_date": "Close Date",
    "created_at": "Created", "updated_at": "Last Modified", "next_step": "Next Step",
    "next_step_due": "Next Step Date", "loss_reason": "Loss Reason", "lead_source": "Lead Source",
    "is_closed": "Closed", "is_won": "Won", "close_date_changes": "Slips",
}


def _inline(d: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in d.items()) + "}"


def _config(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "portfolio.toml"
    cfg.write_text(f"""
[audit]
as_of = 2024-05-15
[history]
path = "history.sqlite"
[report]
formats = ["json", "md", "html"]

[[sources]]
name = "demo-co"
type = "demo"
size = 400

[[sources]]
name = "csv-client"
type = "csv"
opportunities = "{CSV_DATA / 'deals_good.csv'}"
columns = {_inline(CSV_COLUMNS)}
stage_map_default = "salesforce"
timezone = "Europe/Berlin"
currency = "USD"
[sources.rules]
ignore = ["DQ04"]

[[sources]]
name = "sf-export"
type = "salesforce_export"
path = "{SF_EXPORT}"
instance_url = "https://acme.my.salesforce.com"
loss_reason_field = "Loss_Reason__c"
{extra}""")
    return cfg


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "auditor.app.cli", "run", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def _invoke(*args: str):  # noqa: ANN202 - click's Result
    """``crm-audit run`` in this process, for what is refused before any worker starts."""
    from click.testing import CliRunner

    from auditor.app.cli import main

    return CliRunner().invoke(main, ["run", *args])


def _money(text: str) -> float:
    return float(text.replace(",", ""))


def test_three_sources_in_parallel_and_the_overview_equals_the_reports(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    res = _run("-c", str(cfg), "-o", str(tmp_path / "out"), "--jobs", "3")
    assert res.returncode == 0, res.stderr
    doc = json.loads((tmp_path / "out" / "portfolio.json").read_text())
    rows = doc["sources"]
    assert [(r["source"], r["type"], r["status"]) for r in rows] == [
        ("demo-co", "demo", "success"), ("csv-client", "csv", "success"),
        ("sf-export", "salesforce_export", "success")]
    for r in rows:
        folder = tmp_path / "out" / r["source"]
        run = json.loads((folder / "run.json").read_text())
        violations = json.loads((folder / "violations.json").read_text())
        assert r["records"] == run["facts"]["records"]
        assert r["findings"] == run["facts"]["violations"] == len(violations)
        assert r["score"] == run["score"]
        # the amount as shown, with its currency symbol or code (#16)
        shown = re.search(r"Open amount on flagged deals: \*\*\D*([\d,.]+)[^*]*\*\*",
                          (folder / "assessment.md").read_text()).group(1)
        assert round(r["at_risk"]) == round(_money(shown))
        assert f"| {r['source']} | {r['type']} | success | {r['records']:,} |" in (
            tmp_path / "out" / "portfolio.md").read_text()
    assert rows[0]["records"] == 400 and rows[1]["records"] == 4
    assert doc["totals"] == {
        "sources": 3, "succeeded": 3, "failed": 0,
        "records": sum(r["records"] for r in rows), "findings": sum(r["findings"] for r in rows),
        "at_risk": sum(r["at_risk"] for r in rows)}
    # the per-source rules override: DQ04 ignored for csv-client only
    csv_rules = {x["code"] for x in json.loads(
        (tmp_path / "out" / "csv-client" / "run.json").read_text())["rules"]}
    demo_rules = {x["code"] for x in json.loads(
        (tmp_path / "out" / "demo-co" / "run.json").read_text())["rules"]}
    assert "DQ04" in demo_rules and "DQ04" not in csv_rules
    # one process per source (the shared history records each run's pid), one run each
    with sqlite3.connect(tmp_path / "history.sqlite") as db:
        got = db.execute("SELECT source, status, pid FROM runs ORDER BY source").fetchall()
    assert [(s, st) for s, st, _ in got] == [("csv-client", "success"), ("demo-co", "success"),
                                             ("sf-export", "success")]
    assert len({pid for _, _, pid in got}) == 3


def test_a_broken_source_gives_partial_success_with_exit_status_6(tmp_path: Path) -> None:
    cfg = _config(tmp_path, extra=f"""
[[sources]]
name = "broken"
type = "csv"
opportunities = "{tmp_path / 'missing.csv'}"
columns = {_inline(CSV_COLUMNS)}
stage_map_default = "salesforce"
""")
    # the parent in this process (its workers are still spawned processes): the partial
    # success is the point here; test_three_sources_... runs the CLI as its own process
    res = _invoke("-c", str(cfg), "-o", str(tmp_path / "out"), "-j", "2")
    assert res.exit_code == 6, (res.output, res.exception)
    assert "error: 1 of 4 sources failed: broken" in res.stderr
    assert re.search(r"broken: FAILED \(exit 2\): .*missing\.csv", res.stderr)
    rows = {r["source"]: r for r in json.loads(
        (tmp_path / "out" / "portfolio.json").read_text())["sources"]}
    assert [rows[n]["status"] for n in ("demo-co", "csv-client", "sf-export", "broken")] == [
        "success", "success", "success", "failed"]
    assert rows["broken"]["exit_code"] == 2 and "missing.csv" in rows["broken"]["error"]
    for name in ("demo-co", "csv-client", "sf-export"):
        assert (tmp_path / "out" / name / "report.html").exists()
    assert not (tmp_path / "out" / "broken" / "report.html").exists()
    assert "failed: " in (tmp_path / "out" / "portfolio.html").read_text()


def test_source_option_runs_one_source(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    # --source runs the one entry in this process (no worker pool): no subprocess needed
    res = _invoke("-c", str(cfg), "-o", str(tmp_path / "out"), "--source", "csv-client")
    assert res.exit_code == 0, (res.output, res.exception)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["csv-client"]
    # refused before any worker starts
    res = _invoke("-c", str(cfg), "-o", str(tmp_path / "out"), "--source", "nope")
    assert res.exit_code == 2
    assert "no source named 'nope' in [[sources]] (there are: demo-co, csv-client, sf-export)" \
        in res.stderr


def test_source_and_sources_together_or_a_bad_name_are_refused(tmp_path: Path) -> None:
    import pytest

    from auditor.config import parse_config
    from auditor.errors import ConfigError

    with pytest.raises(ConfigError, match=r"both \[source\] and \[\[sources\]\] are set"):
        parse_config({"source": {"type": "demo"}, "sources": [{"name": "a", "type": "demo"}]})
    cfg = _config(tmp_path, extra='[[sources]]\nname = "a/b"\ntype = "demo"\n')
    res = _invoke("-c", str(cfg), "-o", str(tmp_path / "out"))  # refused before any worker
    assert res.exit_code == 2
    assert "[[sources]] entry 4: `name` is required: letters, digits, '.', '_' or '-'" in res.stderr
    assert not (tmp_path / "out").exists()  # refused before anything ran
