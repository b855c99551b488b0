"""One run at a time per history store and source (#13 item 6), with real processes: a second
run waits (`history.lock_wait_s`) or exits 5 with a clear message; two concurrent runs store an
observed stage change once and leave one whole run in the output folder."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from auditor.app.cli import main
from auditor.app.publish import verify
from auditor.history import HistoryStore

ROOT = Path(__file__).resolve().parents[2]
HEADER = "id,name,owner_id,stage,created_at,is_closed,is_won,next_step\n"


def _export(folder: Path, stages: dict[str, str]) -> None:
    rows = "".join(f"{d},Deal {d},u1,{s},2026-03-02T10:00:00Z,false,false,Call\n"
                   for d, s in stages.items())
    (folder / "deals.csv").write_text(HEADER + rows)


def _config(folder: Path, name: str, wait_s: float) -> Path:
    cfg = folder / name
    cfg.write_text(
        '[source]\ntype = "csv"\nname = "export"\nopportunities = "deals.csv"\n'
        '[source.stage_map]\nContact = "contact"\nQualification = "qualification"\n'
        'Discovery = "discovery"\n'
        '[audit]\nas_of = "2026-06-02"\n'
        f'[history]\npath = "history.sqlite"\nlock_wait_s = {wait_s}\n'
        '[report]\nout_dir = "out"\nformats = ["json", "md"]\n'
    )
    return cfg


def _crm_audit(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "auditor.app.cli", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _seed(cfg: Path) -> None:
    """The first run, in this process: it only stores the first export (no lock is contended)."""
    res = CliRunner().invoke(main, ["run", "-c", str(cfg)])
    assert res.exit_code == 0, res.output


def _held(tmp_path: Path, cfg: Path) -> subprocess.Popen[str]:
    """A run that holds the lock, paused in its pull until tmp_path/go exists."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.auditor.hold_run", str(tmp_path / "marker"),
         str(tmp_path / "go"), "run", "-c", str(cfg)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "marker").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc


def _observed(tmp_path: Path) -> list[list[str]]:
    with HistoryStore(tmp_path / "history.sqlite") as store:
        rows = store.derived_history("export")
    return rows[["opportunity_id", "stage", "basis"]].values.tolist()


def test_second_run_exits_5_or_waits_and_the_change_is_stored_once(tmp_path):
    waits = _config(tmp_path, "waits.toml", 60)
    no_wait = _config(tmp_path, "no-wait.toml", 0)
    _export(tmp_path, {"D1": "Contact", "D2": "Contact"})
    _seed(waits)
    _export(tmp_path, {"D1": "Contact", "D2": "Qualification"})  # the next export: D2 moved

    holder = _held(tmp_path, waits)
    try:
        refused = _crm_audit("run", "-c", str(no_wait))
        out, err = refused.communicate(timeout=60)
        assert refused.returncode == 5, err
        assert err.startswith("error: another run of source 'export' is in progress on history "
                              f"store {tmp_path / 'history.sqlite'} (run 2, pid {holder.pid} on ")
        assert "waited 0 s (`history.lock_wait_s`)" in err and "Traceback" not in err

        # its stderr goes to a file, read while it runs: it is at the lock once it says it
        # waits (a fixed 2 s sleep stood here before, long or short depending on the load)
        err_file = tmp_path / "waiting.stderr"
        with err_file.open("w") as err_fh:
            waiting = subprocess.Popen([sys.executable, "-m", "auditor.app.cli", "run", "-c",
                                        str(waits)], cwd=ROOT, stdout=subprocess.PIPE,
                                       stderr=err_fh, text=True)
        deadline = time.monotonic() + 60
        while "waiting up to" not in err_file.read_text():
            assert waiting.poll() is None, err_file.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # it keeps waiting (polls the lock every 0.2 s)
        assert waiting.poll() is None  # still waiting for the lock
        (tmp_path / "go").touch()
        assert holder.wait(120) == 0, holder.communicate()
        w_out, _ = waiting.communicate(timeout=120)
        w_err = err_file.read_text()
        assert waiting.returncode == 0, w_err
        assert "waiting up to 60 s for the run of 'export' in progress" in w_err
    finally:
        (tmp_path / "go").touch()
        holder.wait(60)

    # the change D2 contact → qualification is stored once, by the run that saw it first
    assert _observed(tmp_path) == [
        ["D1", "contact", "first_seen"],
        ["D2", "contact", "first_seen"],
        ["D2", "qualification", "change"],
    ]
    with HistoryStore(tmp_path / "history.sqlite") as store:
        runs = [(r["id"], r["status"]) for r in store.runs()]
    assert runs == [(3, "success"), (2, "success"), (1, "success")]  # the refused run: no row
    assert verify(tmp_path / "out")["run_id"] == 3


def test_two_runs_started_together_run_one_after_the_other(tmp_path):
    cfg = _config(tmp_path, "audit.toml", 120)
    _export(tmp_path, {"D1": "Contact", "D2": "Contact"})
    _seed(cfg)
    _export(tmp_path, {"D1": "Discovery", "D2": "Qualification"})
    procs = [_crm_audit("run", "-c", str(cfg)) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    assert _observed(tmp_path) == [
        ["D1", "contact", "first_seen"],
        ["D2", "contact", "first_seen"],
        ["D1", "discovery", "change"],
        ["D2", "qualification", "change"],
    ]
    manifest = verify(tmp_path / "out")
    assert manifest["run_id"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit.toml", "deals.csv", "history.sqlite", "history.sqlite.lock",
        "history.sqlite.snapshots", "out"]
