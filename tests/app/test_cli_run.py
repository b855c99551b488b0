"""`crm-audit run` options and exit codes, through click's runner and a real process.

The audit is the hand-worked Salesforce-report fixture (data/README.md): CD01 (error) flags
A and E, FU01 (warning) flags B and E.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.app.cli import main
from tests.app.conftest import CD01, FU01, run_cli, write_config


def invoke(*args: str):  # noqa: ANN201 - click's Result
    return CliRunner().invoke(main, list(args))


def flagged(cfg: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for v in json.loads((cfg.parent / "out" / "violations.json").read_text()):
        out.setdefault(v["rule_code"], set()).add(v["opportunity_id"])
    return out


# -- --fail-on and exit codes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ([], 0),  # default: never fail on findings
        (["--fail-on", "never"], 0),
        (["--fail-on", "error"], 1),  # CD01 errors present
        (["--fail-on", "warning"], 1),
        (["--fail-on", "info"], 1),
        (["--select", "FU01", "--fail-on", "error"], 0),  # only warnings left
        (["--select", "FU01", "--fail-on", "warning"], 1),
    ],
)
def test_fail_on_exit_codes_runner(sf_report: Path, args: list[str], code: int) -> None:
    res = invoke("run", "--config", str(sf_report), *args)
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output


def test_fail_on_exit_codes_subprocess(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    proc = run_cli("run", "--config", str(cfg), "--fail-on", "error", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines()[-1] == "--fail-on error: 2 findings at or above error: FAIL"
    res = invoke("run", "--config", str(cfg), "--select", "FU01", "--fail-on", "error")
    assert res.exit_code == 0, res.stderr  # the passing gate's line, in this process
    assert res.stdout.splitlines()[-1] == "--fail-on error: 0 findings at or above error: pass"


def test_usage_errors_exit_2(sf_report: Path) -> None:
    res = invoke("run", "--config", str(sf_report), "--fail-on", "fatal")
    assert res.exit_code == 2 and "'fatal' is not one of 'never', 'info'" in res.output
    res = invoke("run", "--config", str(sf_report), "--new-only")
    assert res.exit_code == 2
    assert "--new-only only changes what --fail-on counts" in res.output
    assert not (sf_report.parent / "out").exists()


def test_new_only_without_history_is_refused(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, history_extra="enabled = false")
    res = invoke("run", "--config", str(cfg), "--fail-on", "error", "--new-only")
    assert res.exit_code == 2  # refused before the audit: the message is the point
    assert res.stderr.strip() == (
        f"error: --new-only needs the run history, which {cfg} disables "
        "(`history.enabled = false`)"
    )


def test_new_only_counts_findings_new_since_the_last_run(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    gate = ["run", "--config", str(cfg), "--fail-on", "error", "--new-only", "--format", "json"]
    # in this process (exit codes from a real process: test_fail_on_exit_codes_subprocess)
    # first run of the source: nothing to compare with, every finding is new
    first = invoke(*gate)
    assert first.exit_code == 1, first.stderr
    assert json.loads(first.stdout)["failing_findings"] == 2
    # same data again: the two CD01 errors persist, nothing new
    second = invoke(*gate)
    assert second.exit_code == 0, second.stderr
    data = json.loads(second.stdout)
    assert data["failing_findings"] == 0 and data["history"]["persisting"] == 4
    # without --new-only the same run fails
    assert invoke("run", "--config", str(cfg), "--fail-on", "error").exit_code == 1
    # a new deal whose close date has passed: one new error
    csv = tmp_path / "sf_report_opportunities.csv"
    csv.write_text(
        csv.read_text(encoding="utf-8-sig")
        + '"0065g00000AbCdG","Eta - Upsell","Eta AG","Lee Park","Qualification","900.00",'
        '"3/20/2025","Demo"\n',
        encoding="utf-8-sig",
    )
    third = invoke(*gate)
    assert third.exit_code == 1, third.stderr
    data = json.loads(third.stdout)
    assert data["failing_findings"] == 1 and data["history"]["new"] == 1


# -- --select / --ignore -----------------------------------------------------------------------


def test_select_replaces_the_config_selection(sf_report: Path) -> None:
    res = invoke("run", "--config", str(sf_report), "--select", "FU01")
    assert res.exit_code == 0, res.output
    assert flagged(sf_report) == {"FU01": FU01}


def test_select_takes_prefixes_names_groups_and_commas(sf_report: Path) -> None:
    for sel in (["--select", "CD,FU"], ["--select", "close-dates", "--select", "follow-up"],
                ["--select", "close-date-past,missing-next-step"]):
        res = invoke("run", "--config", str(sf_report), *sel)
        assert res.exit_code == 0, res.output
        # CD02/CD03/FU02/FU03 cannot run on this source (no such fields): no findings
        assert flagged(sf_report) == {"CD01": CD01, "FU01": FU01}, sel


def test_ignore_is_added_to_the_config_ignore(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, rules_extra='ignore = ["FU01"]')
    res = invoke("run", "--config", str(cfg))
    assert res.exit_code == 0 and flagged(cfg) == {"CD01": CD01}
    res = invoke("run", "--config", str(cfg), "--ignore", "CD01", "--format", "json")
    assert res.exit_code == 0, res.output
    assert flagged(cfg) == {}
    assert json.loads(res.stdout)["rules_run"] == 0


def test_select_and_ignore_together(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    res = invoke("run", "--config", str(cfg), "--select", "CD,FU", "--ignore", "FU01",
                 "--format", "json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["by_rule"] == {"CD01": 2}
    assert flagged(cfg) == {"CD01": CD01}


# -- --format ----------------------------------------------------------------------------------


def test_format_json_is_the_only_thing_on_stdout(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    proc = run_cli("run", "--config", str(cfg), "--format", "json", "--fail-on", "warning",
                   cwd=tmp_path)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)  # the whole of stdout is one JSON document
    assert data["records"] == 6 and data["violations"] == 4
    assert data["by_severity"] == {"error": 2, "warning": 2}
    assert data["by_rule"] == {"CD01": 2, "FU01": 2}
    assert data["fail_on"] == "warning" and data["failing_findings"] == 4
    assert data["exit_code"] == 1
    assert data["history"] is None  # first run of the source
    # the run's warning went to stderr, not into stdout
    assert "warning: stage history is observed between runs" in proc.stderr


def test_format_text_runner(sf_report: Path) -> None:
    res = invoke("run", "--config", str(sf_report))
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert lines[0].startswith(
        "Audited 6 opportunities from sf-report as of 2025-03-31: 4 findings, hygiene score "
    )
    assert lines[1:3] == [
        "  FU01 missing-next-step                     2",
        "  CD01 close-date-past                       2",
    ]
    assert "warning:" not in res.stdout and "warning: stage history" in res.stderr


# -- verbosity ---------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_before_or_after_the_subcommand(sf_report: Path, where: str) -> None:
    args = ["run", "--config", str(sf_report)]
    args = ["-v", *args] if where == "before" else [*args, "-v"]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    assert "INFO auditor: config " in res.stderr
    assert "2 rules selected (FU01, CD01)" in res.stderr
    assert "INFO" not in res.stdout


def test_without_verbose_no_info_lines(sf_report: Path) -> None:
    res = invoke("run", "--config", str(sf_report))
    assert "INFO" not in res.stderr


def test_quiet_drops_progress_and_warnings_but_keeps_the_result(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    proc = run_cli("run", "--config", str(cfg), "-q", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("Audited 6 opportunities")
    assert proc.stderr == ""
    res = invoke("run", "--config", str(cfg), "--quiet")  # the long spelling, in this process
    assert res.exit_code == 0
    assert res.stdout.startswith("Audited 6 opportunities")
    assert res.stderr == ""
    proc = run_cli("-q", "run", "--config", str(cfg), "-q", "--fail-on", "error", cwd=tmp_path)
    assert proc.returncode == 1  # -qq: silent, the exit code still says it
    assert proc.stdout == "" and proc.stderr == ""


def test_not_a_terminal_gives_plain_progress_lines(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    proc = run_cli("run", "--config", str(cfg), cwd=tmp_path)
    phases = [line.split(" ", 1)[1].split(":")[0] for line in proc.stderr.splitlines()
              if ": done in " in line]
    assert phases == ["pull", "observed history", "rules", "metrics", "history diff",
                      "reports", "history store", "delivery", "publish"]
    assert "(sf_report_opportunities.csv: 6 records, 1 page)" in proc.stderr
    assert "\x1b[" not in proc.stderr  # no terminal control codes in a log
    assert "done in" not in proc.stdout


# -- one --config spelling ---------------------------------------------------------------------


@pytest.mark.parametrize("cmd", ["run", "rules", "check-config", "schedule", "history"])
def test_every_command_takes_config(cmd: str) -> None:
    res = invoke(cmd, "--help")
    assert res.exit_code == 0
    assert "-c, --config PATH" in res.output


def test_check_config_positional_form_still_works_with_a_note(sf_report: Path) -> None:
    res = invoke("check-config", str(sf_report), "--offline")
    assert res.exit_code == 0, res.stderr
    assert res.stderr.startswith(
        "warning: `crm-audit check-config FILE` is deprecated; use "
        "`crm-audit check-config --config FILE`"
    )
    assert res.stdout.endswith(f"{sf_report}: configuration is valid; 2 rules selected.\n")
    res = invoke("check-config", "--config", str(sf_report), "--offline")
    assert res.exit_code == 0 and "deprecated" not in res.stderr


def test_exit_codes_documented_in_help() -> None:
    for args in (["--help"], ["run", "--help"]):
        out = invoke(*args).output
        for line in ("0  success", "1  ", "2  user error", "3  the CRM could not be read",
                     "4  ", "5  "):
            assert line in out, (args, line)


# -- exit codes 3 and 4, and how they combine with --fail-on ----------------------------------

#: nothing listens on 127.0.0.1:9 (discard): connecting is refused at once
UNREACHABLE_HUBSPOT = """\
[source]
type = "hubspot"
host = "http://127.0.0.1:9"
retry_attempts = 1
timeout_s = 2
"""

REFUSING_SMTP = """
[delivery]
managers = ["head.of.sales@example.com"]
[delivery.smtp]
host = "127.0.0.1"
port = 9
security = "none"
sender = "audit@example.com"
timeout_s = 2
"""


def test_exit_3_when_the_crm_cannot_be_read(tmp_path: Path) -> None:
    cfg = tmp_path / "hs.toml"
    cfg.write_text(UNREACHABLE_HUBSPOT)
    env = {"HUBSPOT_ACCESS_TOKEN": "pat-test-0000"}
    res = CliRunner(env=env).invoke(main, ["run", "--config", str(cfg), "--fail-on", "error"])
    assert res.exit_code == 3, res.output
    assert res.stdout == "" and res.stderr.splitlines()[-1].startswith("error: ")
    proc = run_cli("run", "--config", str(cfg), cwd=tmp_path, env=env)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    assert "pat-test-0000" not in proc.stderr


def test_exit_4_when_mail_fails_wins_over_findings(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text() + REFUSING_SMTP)
    res = invoke("run", "--config", str(cfg), "--fail-on", "error")
    assert res.exit_code == 4, res.output
    assert "error: 1 email(s) could not be sent (see run.json)" in res.stderr
    assert "--fail-on error: 2 findings at or above error: FAIL" in res.stdout
    proc = run_cli("run", "--config", str(cfg), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 4
    data = json.loads(proc.stdout)
    assert data["exit_code"] == 4
    assert [(d["recipient"], d["status"]) for d in data["delivery_results"]] == [
        ("head.of.sales@example.com", "failed")
    ]


def test_quiet_and_verbose_with_the_runner(sf_report: Path) -> None:
    res = invoke("-q", "run", "--config", str(sf_report))
    assert res.exit_code == 0 and res.stdout.startswith("Audited 6 opportunities")
    assert res.stderr == ""
    res = invoke("run", "--config", str(sf_report), "-qq", "--fail-on", "warning")
    assert res.exit_code == 1 and res.stdout == "" and res.stderr == ""


def test_verbose_subprocess(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    proc = run_cli("run", "--config", str(cfg), "-vv", cwd=tmp_path)
    assert proc.returncode == 0
    assert "INFO auditor: config " in proc.stderr
    assert proc.stdout.startswith("Audited 6 opportunities") and "INFO" not in proc.stdout


def test_readme_and_help_list_every_run_option() -> None:
    from tests.app.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    help_text = invoke("run", "--help").output
    for opt in ("--select", "--ignore", "--fail-on", "--new-only", "--format", "--quiet",
                "--config"):
        assert opt in help_text, opt
        assert f"`{opt}" in readme, opt
    for level in ("never", "info", "warning", "error"):
        assert level in help_text
