"""`crm-audit check-config --offline`: secrets, schedule, rules that cannot run — no network."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.app.checks import CheckEnv, check_rules_evaluable, check_schedule, run_checks
from auditor.config import load_config, parse_config
from tests.app.conftest import ROOT, run_cli, write_config

#: a port nothing listens on: an online check would fail, an offline one never notices
HUBSPOT = """\
[source]
type = "hubspot"
host = "http://127.0.0.1:9"
retry_attempts = 1
timeout_s = 2
"""

SMTP = """\
[delivery]
managers = ["head.of.sales@example.com"]
[delivery.smtp]
host = "127.0.0.1"
sender = "CRM audit <crm-audit@example.com>"
username_env = "TEST_SMTP_USER"
password_env = "TEST_SMTP_PASSWORD"
"""


def _cfg(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "audit.toml"
    p.write_text(text)
    return p


def invoke(args: list[str], env: dict[str, str] | None = None):  # noqa: ANN201
    return CliRunner(env=env).invoke(main_cli(), args)


def main_cli():  # noqa: ANN201
    from auditor.app.cli import main

    return main


# -- secrets -----------------------------------------------------------------------------------


def test_offline_catches_a_missing_secret(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    cfg = _cfg(tmp_path, HUBSPOT)
    res = invoke(["check-config", "--config", str(cfg), "--offline"])
    assert res.exit_code == 2, res.output
    assert "ERROR   1 secret environment variable(s) not set\n" in res.stdout
    # the default of source.access_token_env counts too
    assert (
        "          `source.access_token_env` names HUBSPOT_ACCESS_TOKEN, which is not set or "
        "empty: export HUBSPOT_ACCESS_TOKEN=...\n" in res.stdout
    )
    assert res.stderr == f"{cfg}: 1 problem(s) found.\n"
    assert "configuration is valid" not in res.output


def test_offline_with_the_secret_set_passes_without_showing_it(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, HUBSPOT + SMTP)
    env = {"HUBSPOT_ACCESS_TOKEN": "pat-na1-0f3c2d-secret", "TEST_SMTP_USER": "svc-crm-audit",
           "TEST_SMTP_PASSWORD": "hunter2-smtp"}
    proc = run_cli("check-config", "--config", str(cfg), "--offline", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "ok      secrets: TEST_SMTP_USER, TEST_SMTP_PASSWORD, HUBSPOT_ACCESS_TOKEN set\n"
        in proc.stdout
    )
    for value in env.values():
        assert value not in proc.stdout + proc.stderr
    # and the network was not touched: the same config online cannot reach the portal (exit 3)
    online = invoke(["check-config", "--config", str(cfg)], env=env)  # in this process
    assert online.exit_code == 3, online.output
    assert "ERROR   Source reachable" in online.stdout


def test_smtp_secrets_are_checked_too(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, SMTP)
    # in this process (the message is the point; a real process: the test above)
    res = invoke(["check-config", "--config", str(cfg), "--offline"],
                 env={"TEST_SMTP_USER": "svc-crm-audit", "TEST_SMTP_PASSWORD": None})
    assert res.exit_code == 2
    assert "`delivery.smtp.password_env` names TEST_SMTP_PASSWORD, which is not set" in (
        res.stdout
    )
    assert "TEST_SMTP_USER, which" not in res.stdout


# -- schedule ----------------------------------------------------------------------------------


def test_offline_catches_a_bad_cron(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, '[[schedule.jobs]]\nname = "nightly"\ncron = "30 25 * * *"\n')
    res = invoke(["check-config", "--config", str(cfg), "--offline"])
    assert res.exit_code == 2, res.stdout
    assert "configuration is valid" not in res.stdout
    # the cron parser's own message (the field and its range), naming key and value once
    assert res.stderr == (
        f"error: {cfg}: key `schedule.jobs[0].cron`: '30 25 * * *': the hour field is 25, "
        "outside its range 0-23\n"
    )


def test_offline_catches_a_cron_that_never_fires(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, '[[schedule.jobs]]\nname = "feb30"\ncron = "0 6 30 2 *"\n')
    res = invoke(["check-config", "--config", str(cfg), "--offline"])
    assert res.exit_code == 2
    assert res.stderr == (
        f"error: {cfg}: key `schedule.jobs[0].cron`: '0 6 30 2 *' never fires: no month in "
        "the month field has the day(s) 30\n"
    )


def test_schedule_check_reports_a_trigger_that_never_fires(monkeypatch) -> None:
    """Defence in depth: a trigger with no next fire time is an error of the check itself."""
    import auditor.app.scheduler as sched
    from auditor.app import checks

    class Never:
        def get_next_fire_time(self, previous, now):  # noqa: ANN001, ANN201
            return None

    monkeypatch.setattr(sched, "cron_trigger", lambda job, i, origin: Never())
    cfg = parse_config({"schedule": {"jobs": [{"name": "n", "cron": "30 2 * * *"}]}},
                       origin="a.toml")
    res = checks.check_schedule(cfg, CheckEnv(env={}))
    assert res.status == "error"
    assert res.details == ["a.toml: key `schedule.jobs[0].cron` ('n'): '30 2 * * *' never fires "
                           "(no such day in the calendar)"]


def test_valid_schedule_names_the_next_run() -> None:
    cfg = parse_config(
        {"schedule": {"jobs": [
            {"name": "nightly", "cron": "30 2 * * *", "timezone": "Europe/Berlin"},
            {"name": "leap", "cron": "0 0 29 2 *"},
        ]}},
        origin="a.toml",
    )
    res = check_schedule(cfg, CheckEnv(env={}, now=datetime(2026, 11, 28, 12, tzinfo=UTC)))
    assert res.status == "ok"
    assert res.details == [
        "nightly: next run 2026-11-29T02:30:00+01:00",
        "leap: next run 2028-02-29T00:00:00+00:00",
    ]


# -- rules that cannot run ---------------------------------------------------------------------


#: Maven's CSV maps id, stage, owner, account, created (engage date), close date, amount; it has
#: no stage history, no next step, no activity, no loss reason, no forecast, no handoff.
MAVEN_CANNOT_RUN = {
    "QL01": "the source does not provide stage history",
    "QL02": "exit-criteria field(s) not in the data: authority, budget, need, timeline",
    "ST01": "the source does not provide stage history",
    "ST02": "the source does not provide stage history",
    "ST03": "the source does not provide stage_entered_at",
    "ST04": "the source does not provide stage_entered_at, last_activity_at",
    "FU01": "source provides neither next_step nor next_step_due",
    "FU02": "the source does not provide next_step_due",
    "FU03": "the source does not provide last_activity_at",
    "CD02": "the source does not provide close_date_changes",
    "CD03": "source provides neither forecast_category nor probability",
    "CL01": "the source does not provide loss_reason",
    "CL03": "the source does not provide handoff_at",
}


def test_offline_lists_the_rules_that_cannot_run_on_maven() -> None:
    cfg = ROOT / "examples" / "maven" / "maven.toml"
    res = CliRunner().invoke(main_cli(), ["check-config", "--config", str(cfg), "--offline"])
    assert res.exit_code == 0, res.output  # a fact about the source, not an error
    assert "warning 13 of 19 selected rules cannot run on this source\n" in res.stdout
    for code, reason in MAVEN_CANNOT_RUN.items():
        assert f"{code} " in res.stdout and f": {reason}\n" in res.stdout, code
    assert res.stdout.endswith(f"{cfg}: configuration is valid; 19 rules selected.\n")


def test_the_prediction_matches_what_a_real_audit_of_maven_could_evaluate() -> None:
    from auditor.app.run import audit_snapshot, pull

    config = load_config(ROOT / "examples" / "maven" / "maven.toml")
    check = check_rules_evaluable(config, CheckEnv(env={}))
    predicted = {line.split(" ", 1)[0] for line in check.details}
    run = audit_snapshot(pull(config), config, as_of=date(2018, 1, 1))
    cov = run.result.coverage.set_index("rule_code")
    none_evaluated = set(cov.index[cov["evaluated"] == 0])
    assert predicted == set(MAVEN_CANNOT_RUN)
    # the run agrees, and finds two more that only the data can tell (not the mapping):
    # every open Maven deal lacks a close date, and no deal reaches DQ01's stages
    assert none_evaluated - predicted == {"CD01", "DQ01"}
    assert predicted <= none_evaluated
    assert cov.loc["CD01", "reasons"] == {"open deal without close date": 2089}
    assert cov.loc["DQ01", "applicable"] == 0


def test_every_rule_can_run_on_the_demo_org() -> None:
    results = run_checks(parse_config({"source": {"type": "demo"}}), network=False)
    assert [r.title for r in results if "rules can run" in r.title] == [
        "all 19 selected rules can run on this source"
    ]


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        # the fixture maps next_step: FU01 runs; no activity date: FU03 cannot
        ({}, {"FU03": "the source does not provide last_activity_at"}),
    ],
)
def test_mapping_decides(tmp_path: Path, columns: dict, expected: dict) -> None:
    cfg = write_config(tmp_path)
    text = cfg.read_text().replace('select = ["CD01", "FU01"]', 'select = ["FU"]')
    cfg.write_text(text)
    check = check_rules_evaluable(load_config(cfg), CheckEnv(env={}))
    lines = dict(line.split(" ", 1) for line in check.details)
    assert "FU01" not in lines
    assert lines["FU03"].endswith(expected["FU03"])
    # mapping an activity date makes FU03 runnable
    cfg.write_text(text.replace('next_step = "Next Step"',
                                'next_step = "Next Step"\nlast_activity_at = "Close Date"'))
    check = check_rules_evaluable(load_config(cfg), CheckEnv(env={}))
    assert "FU03" not in "".join(check.details)


def test_csv_prediction_equals_the_pull(sf_report: Path) -> None:
    from auditor.app.source_shape import expected_shape
    from connectors.registry import build_connector

    connector = build_connector(load_config(sf_report))
    shape = expected_shape(connector)
    snap = connector.pull()
    assert shape is not None
    assert shape.provided_fields == snap.meta.provided_fields
    # the stage map can reach more stages than this export's rows show
    assert shape.reached_stages >= snap.meta.reached_stages
    assert shape.has_stage_history is snap.meta.has_stage_history is False


def test_source_facts_are_printed_for_people_not_as_python() -> None:
    from auditor.app.checks import _fact

    assert _fact({"Demo Booked": 39, "On hold": 2}) == "Demo Booked (39), On hold (2)"
    assert _fact({}) == "none"
    assert _fact(["Discovery Call", "Legacy"]) == "Discovery Call, Legacy"
    assert _fact(13800) == "13800"


def test_the_example_config_passes_the_offline_check() -> None:
    cfg = ROOT / "config.example.toml"
    res = CliRunner().invoke(main_cli(), ["check-config", "--config", str(cfg), "--offline"])
    assert res.exit_code == 0, res.output
    assert res.stdout.endswith(f"{cfg}: configuration is valid; 19 rules selected.\n")
