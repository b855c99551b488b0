"""The crm-audit command line, run the way a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from auditor.app.cli import main


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "auditor.app.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"},
    )


def test_run_without_config_audits_the_demo(tmp_path: Path) -> None:
    proc = run_cli("run", "--as-of", "2026-06-30", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "audit-report"
    for name in ("report.html", "report.md", "violations.csv", "violations.json", "metrics.json"):
        assert (out / name).is_file(), name
    assert proc.stdout.startswith("Audited 2000 opportunities from demo as of 2026-06-30:")
    assert "Traceback" not in proc.stderr
    data = json.loads((out / "violations.json").read_text())
    assert data and {
        "rule_code",
        "rule_name",
        "severity",
        "opportunity_id",
        "opportunity_name",
        "owner_id",
        "message",
        "fingerprint",
    } <= set(data[0])


def test_bad_config_gives_one_paragraph_and_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[source]\ntype = "demo"\n[rules.ST04]\nmax_days = -1\n')
    proc = run_cli("run", "--config", str(cfg), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {cfg}: key `rules.ST04.max_days`: must be at least 0, got -1"
    )
    assert not (tmp_path / "audit-report").exists()


def test_missing_config_file(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["run", "--config", str(tmp_path / "x.toml")])
    assert res.exit_code == 2
    assert f"config file {tmp_path / 'x.toml'} does not exist" in res.output


def test_rules_json_lists_documented_rules() -> None:
    res = CliRunner().invoke(main, ["rules", "--json"])
    assert res.exit_code == 0
    docs = json.loads(res.output)
    codes = [d["code"] for d in docs]
    assert {"QL01", "FU01", "ST04", "CL01"} <= set(codes)
    for d in docs:
        assert {"code", "name", "severity", "params", "doc"} <= set(d)
        assert d["why"] and d["fix"]
    st04 = next(d for d in docs if d["code"] == "ST04")
    assert st04["params"]["max_days"]["default"] == 21


def test_rules_text_and_unknown_code() -> None:
    res = CliRunner().invoke(main, ["rules", "ST04"])
    assert res.exit_code == 0
    assert "stale-proposal" in res.output and "How to fix" in res.output
    res = CliRunner().invoke(main, ["rules", "XX01"])
    assert res.exit_code == 2
    assert "no rule has code or name 'XX01'" in res.output


def test_check_config_validates_without_auditing(tmp_path: Path) -> None:
    cfg = tmp_path / "ok.toml"
    cfg.write_text('[source]\ntype = "demo"\n[rules]\nselect = ["QL", "CL01"]\n')
    res = CliRunner().invoke(main, ["check-config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert f"{cfg}: configuration is valid;" in res.output


def test_help_everywhere() -> None:
    for cmd in ([], ["run"], ["rules"], ["check-config"]):
        res = CliRunner().invoke(main, [*cmd, "--help"])
        assert res.exit_code == 0
        assert "Usage:" in res.output
