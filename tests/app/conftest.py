"""A Salesforce-report-shaped CSV audit (see data/README.md for its hand-worked findings)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
[audit]
as_of = 2025-03-31

[source]
type = "csv"
name = "sf-report"
opportunities = "sf_report_opportunities.csv"
stage_map_default = "salesforce"
dayfirst = false
currency = "USD"

[source.columns]
id = "Opportunity ID"
name = "Opportunity Name"
account_name = "Account Name"
owner_id = "Opportunity Owner"
stage = "Stage"
amount = "Amount"
close_date = "Close Date"
next_step = "Next Step"

[rules]
select = ["CD01", "FU01"]
{rules_extra}
[report]
out_dir = "out"
formats = ["json"]
assessment = false

[history]
path = "history.sqlite"
{history_extra}
"""

#: the hand-worked expectation of data/README.md
CD01 = {"0065g00000AbCdA", "0065g00000AbCdE"}
FU01 = {"0065g00000AbCdB", "0065g00000AbCdE"}


def write_config(folder: Path, rules_extra: str = "", history_extra: str = "") -> Path:
    shutil.copy(DATA / "sf_report_opportunities.csv", folder / "sf_report_opportunities.csv")
    cfg = folder / "audit.toml"
    cfg.write_text(CONFIG.format(rules_extra=rules_extra, history_extra=history_extra))
    return cfg


@pytest.fixture
def sf_report(tmp_path: Path) -> Path:
    """The config file of the fixture audit, in a fresh folder."""
    return write_config(tmp_path)


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, **kw
) -> subprocess.CompletedProcess[str]:
    """``crm-audit`` as a real process, stdout and stderr piped (not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "auditor.app.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
             **(env or {})},
        **kw,
    )
