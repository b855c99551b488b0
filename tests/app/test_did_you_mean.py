"""One test per "did you mean": config keys, source types, rule selectors, column names, field
names, rule parameters and values from a fixed set. Each goes through the command line and
checks the whole message: the key, the suggestion, the allowed values, no dict dump."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from auditor.app.cli import main
from tests.app.conftest import run_cli, write_config


def _error(*args: str) -> str:
    res = CliRunner().invoke(main, list(args))
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert res.stdout == ""  # errors go to stderr
    return res.stderr.strip()


def _cfg(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "audit.toml"
    p.write_text(text)
    return p


def test_config_key(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, '[source]\ntype = "csv"\noportunities = "deals.csv"\n')
    assert _error("run", "--config", str(cfg)) == (
        f"error: {cfg}: missing required key `source.opportunities`\n"
        f"{cfg}: unknown key `source.oportunities` (did you mean 'opportunities'?)"
    )


def test_config_key_in_a_section_and_a_list(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, '[report]\nout_dri = "x"\n[[schedule.jobs]]\nname = "n"\n'
               'cron = "0 6 * * 1"\ntimzone = "UTC"\n')
    assert _error("run", "--config", str(cfg)) == (
        f"error: {cfg}: unknown key `report.out_dri` (did you mean 'out_dir'?)\n"
        f"{cfg}: unknown key `schedule.jobs[0].timzone` (did you mean 'timezone'?)"
    )


def test_unknown_key_without_a_close_match_lists_the_allowed_ones(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "[history]\nkeep_forever = true\n")
    assert _error("run", "--config", str(cfg)) == (
        f"error: {cfg}: unknown key `history.keep_forever`; allowed here: enabled, path, "
        "trend_runs, lock_wait_s"
    )


def test_source_type(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, '[source]\ntype = "hubspott"\n')
    assert _error("run", "--config", str(cfg)) == (
        f"error: {cfg}: key `source.type`: unknown source type 'hubspott' (did you mean "
        "'hubspot'?); allowed: csv, demo, hubspot, hubspot_export, salesforce, "
        "salesforce_export"
    )


def test_rule_selector_in_config(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, '[rules]\nselect = ["stale-proposals"]\n')
    msg = _error("run", "--config", str(cfg))
    assert msg.startswith(
        f"error: {cfg}: key `rules.select`: 'stale-proposals' matches no rule (did you mean "
        "'stale-proposal'?)"
    )


def test_rule_selector_on_the_command_line(tmp_path: Path) -> None:
    msg = _error("run", "--ignore", "data-qualty")
    assert msg.startswith(
        "error: command line: key `--ignore`: 'data-qualty' matches no rule (did you mean "
        "'data-quality'?)"
    )
    # through a real process too, and before anything is pulled or written
    proc = run_cli("run", "--select", "CD01,FU1", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "error: command line: key `--select`: 'FU1' matches no rule (did you mean 'FU01'?)"
    )
    assert not (tmp_path / "audit-report").exists()


def test_rule_code_for_the_rules_command() -> None:
    assert _error("rules", "stale-proposl") == (
        "error: no rule has code or name 'stale-proposl' (did you mean 'stale-proposal'?) "
        "(see `crm-audit rules`)"
    )


def test_rule_parameter(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "[rules.ST04]\nmax_dayz = 3\n")
    assert _error("run", "--config", str(cfg)) == (
        f"error: {cfg}: unknown key `rules.ST04.max_dayz`: rule ST04 (stale-proposal) has "
        "parameters: max_days, idle_days (did you mean 'max_days'?)"
    )


def test_value_from_a_fixed_set(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, '[rules.severity]\nST04 = "warnng"\n')
    assert _error("run", "--config", str(cfg)) == (
        f"error: {cfg}: key `rules.severity.ST04`: 'warnng' is not allowed (did you mean "
        "'warning'?); allowed: error, warning, info"
    )


def test_field_name_in_a_column_mapping_without_dumping_the_table(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    text = cfg.read_text().replace('close_date = "Close Date"', 'clos_date = "Close Date"')
    cfg.write_text(text)
    msg = _error("run", "--config", str(cfg))
    assert msg.startswith(
        f"error: {cfg}: key `source.columns`: unknown opportunity column 'clos_date' (did you "
        "mean 'close_date'?); allowed: account_id, account_name, amount, close_date,"
    )
    assert "{" not in msg and "Opportunity ID" not in msg  # the mapping itself is not dumped


def test_column_name_in_the_csv_header(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace('"Close Date"', '"Close Dat"'))
    msg = _error("run", "--config", str(cfg))
    assert msg == (
        "error: sf_report_opportunities.csv: column 'Close Dat' (mapped by "
        "`source.columns.close_date`) is not in the header (did you mean 'Close Date'?); "
        "headers found: Opportunity ID, Opportunity Name, Account Name, Opportunity Owner, "
        "Stage, Amount, Close Date, Next Step"
    )


def test_field_names_the_config_refers_to(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, '[process.exit_criteria]\nqualification = ["budgt", "authority", '
               '"need", "timeline"]\n[metrics]\nsegment_field = "prodcut"\n')
    res = CliRunner().invoke(main, ["check-config", "--config", str(cfg), "--offline"])
    assert res.exit_code == 0  # a warning: the rule and the metric say "not evaluable"
    assert (
        "warning 2 field name(s) not in the source\n"
        f"          {cfg}: key `process.exit_criteria.qualification`: field 'budgt' is not in "
        "this source's data (did you mean 'budget'?)\n"
        f"          {cfg}: key `metrics.segment_field`: field 'prodcut' is not in this "
        "source's data (did you mean 'product'?)\n"
    ) in res.stdout
