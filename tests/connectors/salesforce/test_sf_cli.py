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
    result = CliRunner().invoke(main, ["check-config", "--config", str(tmp_path / "audit.toml")])
    assert result.exit_code == 0, result.output
    # facts as text for people, not Python reprs
    assert "  unmapped_stages: Discovery Call\n" in result.output
    assert "  api_calls: 2\n" in result.output  # stage metadata + describe
    assert "  api_remaining: 13800\n" in result.output
    assert "  unreadable_fields: none\n" in result.output
    assert "not readable" not in result.output
    assert SESSION_ENV["SF_SESSION"] not in result.output
    assert len(rsps.calls) == 2 and org.soql[0].endswith("FROM OpportunityStage")
    assert org.describes == ["Opportunity"]


def test_check_config_names_hidden_fields_and_the_rules_they_stop(org, tmp_path,
                                                                  monkeypatch) -> None:
    monkeypatch.setenv("SF_SESSION", SESSION_ENV["SF_SESSION"])
    org.hidden |= {"Amount", "NextStep", "Loss_Reason__c"}
    (tmp_path / "audit.toml").write_text(CONFIG)
    result = CliRunner().invoke(main, ["check-config", str(tmp_path / "audit.toml")])
    assert result.exit_code == 0, result.output
    lines = [x.strip() for x in result.output.splitlines() if "is not readable" in x]
    assert lines == [
        "field Amount is not readable by the integration user: rules not evaluable: CL02, DQ01 "
        "(grant Read on Opportunity.Amount to audit them)",
        "field Loss_Reason__c is not readable by the integration user: rules not evaluable: "
        "CL01 (grant Read on Opportunity.Loss_Reason__c to audit them)",
        "field NextStep is not readable by the integration user: rules not evaluable: FU01 "
        "(grant Read on Opportunity.NextStep to audit them)",
    ]


def test_check_config_with_a_hidden_required_field_is_a_clear_error(org, tmp_path,
                                                                      monkeypatch) -> None:
    monkeypatch.setenv("SF_SESSION", SESSION_ENV["SF_SESSION"])
    org.hidden |= {"StageName"}
    (tmp_path / "audit.toml").write_text(CONFIG)
    result = CliRunner().invoke(main, ["check-config", str(tmp_path / "audit.toml")])
    assert result.exit_code != 0
    assert "cannot read the required field Opportunity.StageName; grant the integration user " \
        "Read access to Opportunity.StageName" in result.output
    assert "Traceback" not in result.output


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


def test_crm_audit_run_by_a_user_who_cannot_read_amount_and_next_step(org, tmp_path,
                                                                       monkeypatch) -> None:
    """Issue 13 acceptance, through the CLI: the run succeeds (exit 0) and the report's
    coverage names each rule that could not run and why; the findings of the other rules are
    there."""
    monkeypatch.setenv("SF_SESSION", SESSION_ENV["SF_SESSION"])
    org.hidden |= {"Amount", "NextStep"}
    cfg = tmp_path / "audit.toml"
    cfg.write_text(CONFIG + f"""
[audit]
as_of = 2024-05-15
[history]
enabled = false
[report]
out_dir = "{tmp_path / "out"}"
formats = ["txt", "json"]
""")
    result = CliRunner().invoke(main, ["run", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out" / "report.txt").read_text()
    hits = [y.strip() for y in text.splitlines() if "is not readable by the integration user" in y]
    lines = {x.split()[0]: x for x in hits if " evaluated " in x}  # the coverage section
    assert sorted(lines) == ["CL02", "DQ01", "FU01"]
    # counts: the deals each rule applies to (see test_sf_streams.py)
    assert "field Amount is not readable by the integration user: 1" in lines["CL02"]
    assert "field Amount is not readable by the integration user: 2" in lines["DQ01"]
    assert "field NextStep is not readable by the integration user: 3" in lines["FU01"]
    assert "evaluated 0 of 7" in lines["CL02"]
    # and the warnings say what to grant
    assert sum(x.startswith("Warning:") and "grant the integration user Read access" in x
               for x in hits) == 2
    data = json.loads((tmp_path / "out" / "violations.json").read_text())
    codes = {v["rule_code"] for v in data}
    assert codes.isdisjoint({"CL02", "DQ01", "FU01"}) and "ST04" in codes
