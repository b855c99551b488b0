"""SIGKILL loop (#13 item 6 acceptance): a large demo run killed at random points, again and
again, always leaves the output folder holding exactly one complete run (its manifest lists
every file with size and SHA-256, nothing else is there) of a run the store has as successful,
and the store intact.

Marked ``slow`` (a full run takes 10-20 s at 200,000 opportunities, the loop 4-6 minutes on
2 busy cores): `pytest -q` skips it; the long command (README, .ci/run) runs it.
CRM_AUDIT_KILL_SIZE / CRM_AUDIT_KILL_SEED / CRM_AUDIT_KILLS change the org size, the random
seed and the number of kills.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from auditor.app.publish import verify
from auditor.history import HistoryStore

ROOT = Path(__file__).resolve().parents[2]
SIZE = int(os.environ.get("CRM_AUDIT_KILL_SIZE", "200000"))
SEED = int(os.environ.get("CRM_AUDIT_KILL_SEED", "20261128"))
KILLS = int(os.environ.get("CRM_AUDIT_KILLS", "20"))


def _run(cfg: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "auditor.app.cli", "run", "-c", str(cfg)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _check(tmp_path: Path, *, deep: bool = False) -> int:
    """The output folder is one complete run, stored as successful; the store is intact."""
    manifest = verify(tmp_path / "out")
    with HistoryStore(tmp_path / "history.sqlite") as store:  # marks killed runs interrupted
        assert store.integrity_check() == "ok"
        runs = {r["id"]: r for r in store.runs(limit=1000)}
        assert runs[manifest["run_id"]]["status"] == "success"
        assert {r["status"] for r in runs.values()} <= {"success", "interrupted"}
        last = store.last_successful_run("demo")
        assert len(store.fingerprints(last["id"])) == last["violations"]
        stored_by = store.conn.execute(
            "SELECT run_id FROM snapshots WHERE source = 'demo'").fetchone()[0]
        assert stored_by == last["id"]  # the snapshot of the last successful run, no other
        if deep:
            stored = store.last_snapshot("demo")
            assert stored is not None and len(stored.snapshot.opportunities) == SIZE
    return int(manifest["run_id"])


@pytest.mark.slow
def test_sigkill_at_random_points_always_leaves_one_whole_run(tmp_path):
    cfg = tmp_path / "audit.toml"
    cfg.write_text(
        f'[source]\ntype = "demo"\nsize = {SIZE}\n[audit]\nas_of = "2026-06-15"\n'
        '[history]\npath = "history.sqlite"\n[report]\nout_dir = "out"\n'
    )
    t0 = time.monotonic()
    seed = _run(cfg)
    assert seed.wait(600) == 0, seed.communicate()
    duration = time.monotonic() - t0
    _check(tmp_path)

    rng = random.Random(SEED)
    killed, finished, points = 0, 0, []
    while killed < KILLS:
        assert killed + finished < KILLS * 3, "runs kept finishing before their kill point"
        at = rng.uniform(0.2, duration)
        proc = _run(cfg)
        started = time.monotonic()
        time.sleep(at)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(60)
            killed += 1
            points.append(round(at, 2))
        else:
            assert proc.returncode == 0, proc.communicate()
            finished += 1
            duration = min(duration, time.monotonic() - started)  # later runs can be faster
        _check(tmp_path)
    print(f"seed {SEED}: {killed} kills at {points} s, {finished} runs finished; "
          f"a full run takes {duration:.1f} s")

    final = _run(cfg)
    assert final.wait(600) == 0, final.communicate()
    run_id = _check(tmp_path, deep=True)
    with HistoryStore(tmp_path / "history.sqlite") as store:
        assert store.runs(limit=1)[0]["id"] == run_id
        assert sum(r["status"] == "interrupted" for r in store.runs(limit=1000)) >= 1
    # killed runs' staging folders were cleaned up by the later runs
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit.toml", "history.sqlite", "history.sqlite.lock", "history.sqlite.snapshots", "out"]
    # and of the snapshot files only the stored one (killed runs' files were deleted)
    with HistoryStore(tmp_path / "history.sqlite") as store:
        (name,) = store.conn.execute("SELECT file FROM snapshots").fetchone()
    assert [p.name for p in (tmp_path / "history.sqlite.snapshots").iterdir()] == [name]
