"""`crm-audit check-config` and `crm-audit run` against the fake org and the export fixture."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from auditor.app.cli import main
from tests.connectors.salesforce.fake_org import DATA, SESSION_ENV

CONFIG = """
[source]
type = "salesforce"
name = "acme"
auth = "session"
session_id_env = "SF_SESSION"
instance_url = "https://acme.my.salesforce.com"
loss_reason_field = "Loss_Reason__c"
next_step_due_field = "Next_Step_Date__c"
team_field = "Department"
currency = "USD"
custom_fields = { budget = "Budget__c" }
"""


def test_check_config_reports_unmapped_stages_and_usage(org, rsps, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SF_SESSION", SESSION_ENV["SF_SESSION"])
    (tmp_path / "audit.toml").write_text(CONFIG)
    result = CliRunner().invoke(main, ["check-config", str(tmp_path / "audit.toml")])
    assert result.exit_code == 0, result.output
    assert "  unmapped_stages: ['Discovery Call']\n" in result.output
    assert "  api_calls: 1\n" in result.output
    assert "  api_remaining: 13800\n" in result.output
    assert SESSION_ENV["SF_SESSION"] not in result.output
    assert len(rsps.calls) == 1 and org.soql[0].endswith("FROM OpportunityStage")


def test_run_audits_an_export_folder(tmp_path: Path) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text(f"""
[source]
type = "salesforce_export"
name = "client-x"
path = "{DATA / "export"}"
instance_url = "https://acme.my.salesforce.com"
loss_reason_field = "Loss_Reason__c"
[audit]
as_of = 2024-05-15
[history]
enabled = false
[report]
out_dir = "{tmp_path / "out"}"
formats = ["json"]
""")
    result = CliRunner().invoke(main, ["run", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "out" / "violations.json").read_text())
    process = json.loads((tmp_path / "out" / "process_findings.json").read_text())
    assert ("ST04", "0068d00000OpA01AAA") in {(v["rule_code"], v["opportunity_id"]) for v in data}
    # OpA02 (won) skipped qualification: process history, never a to-do
    assert {(v["rule_code"], v["opportunity_id"]) for v in process} >= {
        ("QL01", "0068d00000OpA02AAA")
    }
    assert all(v["opportunity_id"] != "0068d00000OpA99AAA" for v in data)  # recycle bin


def test_live_run_and_export_run_write_the_same_violations(org, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SF_SESSION", SESSION_ENV["SF_SESSION"])
    common = """
loss_reason_field = "Loss_Reason__c"
next_step_due_field = "Next_Step_Date__c"
team_field = "Department"
currency = "USD"
custom_fields = { budget = "Budget__c" }
[audit]
as_of = 2024-05-15
[history]
enabled = false
"""
    live = CONFIG.split("loss_reason_field")[0] + common
    offline = (
        f"""
[source]
type = "salesforce_export"
name = "acme"
path = "{DATA / "export"}"
instance_url = "https://acme.my.salesforce.com"
"""
        + common
    )
    out = {}
    for name, text in (("live", live), ("offline", offline)):
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text(text + f'[report]\nout_dir = "{tmp_path / name}"\nformats = ["json"]\n')
        result = CliRunner().invoke(main, ["run", "--config", str(cfg)])
        assert result.exit_code == 0, result.output
        out[name] = json.loads((tmp_path / name / "violations.json").read_text())
    assert len(out["live"]) > 0
    assert out["live"] == out["offline"]
