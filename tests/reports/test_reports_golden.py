"""Golden files for the Markdown and text outputs on the fixed run.

After an intended change to a template, regenerate with

    UPDATE_GOLDEN=1 python -m pytest tests/reports/test_reports_golden.py

and review the diff of tests/reports/golden/ like any other code change.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reports.render import write_reports
from tests.reports.reports_fixture import HISTORY, make_run

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
CASES = [
    # (golden file, output file, with history)
    ("report-first-run.md", "report.md", False),
    ("report-first-run.txt", "report.txt", False),
    ("report.md", "report.md", True),
    ("report.txt", "report.txt", True),
    ("assessment.md", "assessment.md", True),
    ("digest-O1.txt", "digests/owner-O1.txt", True),
    ("rollup-M1.txt", "digests/manager-M1.txt", True),
]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    out = {}
    for with_history in (False, True):
        base = tmp_path_factory.mktemp("golden")
        run = make_run(base, history=HISTORY if with_history else None)
        write_reports(run, base / "out")
        out[with_history] = base / "out"
    return out


@pytest.mark.parametrize(("golden", "output", "with_history"), CASES)
def test_output_matches_golden(outputs, golden: str, output: str, with_history: bool) -> None:
    actual = (outputs[with_history] / output).read_text(encoding="utf-8")
    path = GOLDEN / golden
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8")
