"""A run killed with SIGKILL leaves the store readable with the previous run intact (item 6)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from auditor.app.run import execute
from auditor.history import HistoryStore
from connectors.demo import generate_demo_org
from tests.auditor.conftest import AS_OF, make_config

ROOT = Path(__file__).resolve().parents[2]


def _start_and_kill(tmp_path: Path, phase: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.auditor.crash_run", str(tmp_path), phase], cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "marker").exists():
            assert proc.poll() is None, f"crash_run exited early with {proc.returncode}"
            assert time.monotonic() < deadline, "crash_run never reached the kill point"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("phase", ["pull", "commit"])
def test_sigkilled_run_leaves_previous_run_intact(tmp_path, scripted, phase):
    from datetime import date

    org = generate_demo_org(300, seed=11, as_of=date.fromisoformat(AS_OF))
    scripted.script = [org.snapshot, org.snapshot]
    cfg = make_config(tmp_path)
    first = execute(cfg, out_dir=tmp_path / "out")
    n1 = len(first.result.violations)

    _start_and_kill(tmp_path, phase)

    with HistoryStore(tmp_path / "history.sqlite") as store:
        assert store.integrity_check() == "ok"
        runs = store.runs()
        assert [(r["status"], r["violations"]) for r in runs] == [
            ("interrupted", None),
            ("success", n1),
        ]
        killed = runs[0]["id"]
        assert len(store.violations(first.run_id)) == n1
        assert store.violations(killed).empty
        assert store.metrics(killed) == {}
        assert store.last_snapshot("demo").run_id == first.run_id
        n_snap = len(store.last_snapshot("demo").snapshot.opportunities)
        assert n_snap == 300

    # the next run diffs against the last successful one, as if the killed run never happened
    again = execute(cfg, out_dir=tmp_path / "out")
    assert again.history.to_dict()["previous_run"]["id"] == first.run_id
    assert (again.history.to_dict()["new"], again.history.to_dict()["resolved"]) == (0, 0)
