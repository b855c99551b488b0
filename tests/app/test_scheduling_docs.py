"""The crm-audit command lines in docs/scheduling.md run as documented (on the CLI fixture)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from auditor.app.cli import main
from tests.app.conftest import ROOT, write_config

DOC = ROOT / "docs" / "scheduling.md"


def _section(title: str) -> str:
    text = DOC.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start: end if end > 0 else None]


def _commands(section: str) -> list[list[str]]:
    # a command ends at a shell redirect, a quote or the end of the line; Python strings that
    # continue on the next line are joined first
    joined = re.sub(r'"\s*\n\s*"', "", section)
    found = re.findall(r"crm-audit ((?:run|check-config)[^\n>\"]*)", joined)
    return [shlex.split(c) for c in found]


def _with_config(args: list[str], cfg: Path) -> list[str]:
    out = list(args)
    out[out.index("--config") + 1] = str(cfg)
    return out


def test_github_actions_gate(tmp_path: Path) -> None:
    cmds = _commands(_section("GitHub Actions"))
    assert [c[0] for c in cmds] == ["check-config", "run"]
    assert cmds[1][cmds[1].index("--fail-on") + 1] == "error" and "--new-only" in cmds[1]
    cfg = write_config(tmp_path)
    check = CliRunner().invoke(main, _with_config(cmds[0], cfg))
    assert check.exit_code == 0, check.output
    first = CliRunner().invoke(main, _with_config(cmds[1], cfg))
    assert first.exit_code == 1  # first run: both CD01 errors are new
    assert json.loads(first.stdout)["failing_findings"] == 2
    again = CliRunner().invoke(main, _with_config(cmds[1], cfg))
    assert again.exit_code == 0  # nothing new the next night: the gate passes


def test_airflow_task(tmp_path: Path) -> None:
    (cmd,) = _commands(_section("Airflow"))
    cfg = write_config(tmp_path)
    res = CliRunner().invoke(main, _with_config(cmd, cfg))
    assert res.exit_code == 1
    lines = res.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[-1])["exit_code"] == 1  # the XCom value
    assert res.stderr == ""  # --quiet
