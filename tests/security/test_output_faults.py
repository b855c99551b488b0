"""Fault scenarios of the output folder, the disk and the run lock (#13 item 6, #17 items 4, 8
and 9), for the fault matrix: each either leaves the previous output set and the store exactly
as they were, or is refused up front with a clear message and a documented exit status.

OUTPUT_FAULTS is the table (docs/fault-matrix.md lists every row, see test_fault_matrix_doc).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import auditor.files as files_module
from auditor.app.cli import main
from auditor.app.publish import verify
from auditor.history import HistoryStore
from connectors import registry
from tests.auditor.fakes import ScriptedConnector
from tests.security.matrix import record
from tests.support.disk_full import FullOs

ROOT = Path(__file__).resolve().parents[2]
SECTION = "7. Output folder, disk and run lock"
RERUNS = ROOT / "tests" / "connectors" / "reruns"

OUTPUT_FAULTS = [
    {"id": "output-killed-writing-reports", "target": "crm-audit run",
     "fault": "SIGKILL after 3 report files were written into the staging folder"},
    {"id": "output-killed-after-store", "target": "crm-audit run",
     "fault": "SIGKILL after the store commit, before the manifest and the swap"},
    {"id": "output-killed-before-swap", "target": "crm-audit run",
     "fault": "SIGKILL with the manifest written, just before the swap"},
    {"id": "output-disk-full", "target": "crm-audit run",
     "fault": "ENOSPC after 5,000 bytes of reports (injected into the file writer)"},
    {"id": "output-folder-is-a-file", "target": "crm-audit run",
     "fault": "report.out_dir names an existing file"},
    {"id": "output-folder-root", "target": "crm-audit run", "fault": 'report.out_dir = "/"'},
    {"id": "output-folder-foreign", "target": "crm-audit run",
     "fault": "report.out_dir is a folder of someone's own files"},
    {"id": "output-folder-read-only", "target": "crm-audit run",
     "fault": "output folder on a read-only file system"},
    {"id": "history-path-is-a-report", "target": "crm-audit run",
     "fault": 'history.path = "out/report.html" (inside the output folder)'},
    {"id": "output-planted-symlink", "target": "crm-audit run",
     "fault": "report.md in the output folder is a symlink to another file"},
    {"id": "export-symlink-out", "target": "salesforce_export",
     "fault": "User.csv in the export folder is a symlink to a file outside it"},
    {"id": "run-lock-held", "target": "crm-audit run",
     "fault": "another run of the same source holds the run lock; history.lock_wait_s = 0"},
    {"id": "history-on-full-disk", "target": "crm-audit history",
     "fault": "the store's disk is completely full (tmpfs), its -shm file gone"},
]
BY_ID = {c["id"]: c for c in OUTPUT_FAULTS}


@pytest.fixture(autouse=True)
def scripted(monkeypatch: pytest.MonkeyPatch) -> type[ScriptedConnector]:
    monkeypatch.setitem(registry.CONNECTORS, "scripted", "tests.auditor.fakes:ScriptedConnector")
    ScriptedConnector.script, ScriptedConnector.calls = [], []
    return ScriptedConnector


def _config(tmp: Path, out: str = "out", history: str = "history.sqlite",
            extra: str = "") -> Path:
    cfg = tmp / "audit.toml"
    cfg.write_text(
        '[source]\ntype = "scripted"\nname = "demo"\n[audit]\nas_of = "2026-06-15"\n'
        f'[history]\npath = "{history}"\nlock_wait_s = 0\n'
        f'[report]\nout_dir = "{out}"\nformats = ["json", "csv", "md", "html", "txt"]\n' + extra
    )
    return cfg


def _org() -> Any:
    from datetime import date

    from connectors.demo import generate_demo_org

    return generate_demo_org(400, seed=2, as_of=date(2026, 6, 15)).snapshot


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exc_info
    return res.exit_code, res.output.strip()


def _seeded(tmp: Path, scripted: type[ScriptedConnector]) -> tuple[Path, dict, dict[str, bytes]]:
    """One good run; returns the config, its manifest and the folder's files."""
    cfg = _config(tmp)
    scripted.script = [_org()]
    code, out = _cli("run", "-c", str(cfg))
    assert code == 0, out
    folder = tmp / "out"
    return cfg, verify(folder), _files(folder)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _done(case_id: str, expected: str, outcome: str) -> None:
    c = BY_ID[case_id]
    record(SECTION, case_id, c["target"], c["fault"], expected, outcome)


@pytest.mark.parametrize("point", ["reports", "stored", "swap"])
def test_killed_run_leaves_the_previous_set(tmp_path, scripted, point):
    cfg, manifest, before = _seeded(tmp_path, scripted)
    proc = subprocess.Popen([sys.executable, "-m", "tests.security.kill_point", str(tmp_path),
                             point], cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "marker").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert _files(tmp_path / "out") == before and verify(tmp_path / "out") == manifest
    with HistoryStore(tmp_path / "history.sqlite") as store:
        assert store.integrity_check() == "ok"
        statuses = [r["status"] for r in store.runs()]
    # killed after the commit: stored, not yet published (the next run publishes its successor)
    assert statuses == (["interrupted", "success"] if point == "reports"
                        else ["success", "success"])
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert len(leftovers) == 1  # the killed run's staging folder, until the next run
    scripted.script = [_org()]
    code, out = _cli("run", "-c", str(cfg))
    assert code == 0, out
    assert verify(tmp_path / "out")["run_id"] == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []
    case = {"reports": "output-killed-writing-reports", "stored": "output-killed-after-store",
            "swap": "output-killed-before-swap"}[point]
    _done(case, "previous output set untouched, store intact",
          f"out/ still run {manifest['run_id']}'s {len(before)} files (manifest verified); "
          f"store integrity ok, runs {statuses}; the next run removed the dead staging folder "
          "and published run 3")




def test_disk_full(tmp_path, scripted, monkeypatch):
    cfg, manifest, before = _seeded(tmp_path, scripted)
    scripted.script = [_org()]
    monkeypatch.setattr(files_module, "os", FullOs(5000))
    code, out = _cli("run", "-c", str(cfg), "-q")  # -q: no progress lines before the error
    monkeypatch.undo()
    assert code == 3 and out.startswith("error: the disk is full: "), out
    assert "the previous reports in" in out and "are unchanged" in out
    assert _files(tmp_path / "out") == before
    _done("output-disk-full", "exit 3 with a message, previous set untouched",
          f"exit {code}: {out.split(': ', 2)[0]}: …{out.split('.', 1)[1]}; out/ unchanged")


@pytest.mark.parametrize("case", ["output-folder-is-a-file", "output-folder-root",
                                  "output-folder-foreign", "history-path-is-a-report"])
def test_refused_before_the_pull(tmp_path, scripted, case):
    out, history = "out", "history.sqlite"
    if case == "output-folder-is-a-file":
        (tmp_path / "out").write_text("a file")
    elif case == "output-folder-root":
        out = "/"
    elif case == "output-folder-foreign":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "thesis.docx").write_text("mine")
    else:
        history = "out/report.html"
    scripted.script = [_org()]
    code, text = _cli("run", "-c", str(_config(tmp_path, out=out, history=history)))
    assert code == 2 and text.startswith("error: ") and "Traceback" not in text, text
    assert scripted.calls == []
    _done(case, "refused before the pull, exit 2", f"exit 2: {text.replace(str(tmp_path), '…')}")


def test_read_only_output_folder(tmp_path, scripted):
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.system(f"mount -t tmpfs -o ro,size=1m tmpfs {ro} 2>/dev/null") != 0:
        pytest.skip("needs to mount a read-only tmpfs (root)")
    try:
        scripted.script = [_org()]
        code, text = _cli("run", "-c", str(_config(tmp_path, out=str(ro / "out"))))
    finally:
        os.system(f"umount {ro}")
    assert code == 2 and "Read-only file system" in text and scripted.calls == [], text
    _done("output-folder-read-only", "refused before the pull, exit 2",
          f"exit 2: {text.replace(str(tmp_path), '…')}")


def test_planted_symlink_in_the_output_folder(tmp_path, scripted):
    cfg, _, _ = _seeded(tmp_path, scripted)
    target = tmp_path / "precious.txt"
    target.write_text("keep")
    (tmp_path / "out" / "report.md").unlink()
    (tmp_path / "out" / "report.md").symlink_to(target)
    scripted.script = [_org()]
    code, out = _cli("run", "-c", str(cfg))
    assert code == 0, out
    assert target.read_text() == "keep" and not (tmp_path / "out" / "report.md").is_symlink()
    verify(tmp_path / "out")
    _done("output-planted-symlink", "never written through",
          "target unchanged; the folder was replaced whole (report.md a regular 0600 file)")


def test_symlink_out_of_an_export_folder(tmp_path):
    folder = tmp_path / "audit"
    shutil.copytree(RERUNS / "salesforce_export" / "week1", folder / "export")
    shutil.copy(RERUNS / "salesforce_export" / "week1.toml", folder / "audit.toml")
    secret = tmp_path / "User.csv"
    (folder / "export" / "User.csv").rename(secret)
    (folder / "export" / "User.csv").symlink_to(secret)
    code, text = _cli("run", "-c", str(folder / "audit.toml"), "--as-of", "2026-06-08")
    assert code == 2 and "outside the export folder" in text, text
    _done("export-symlink-out", "refused, exit 2", f"exit 2: {text.replace(str(tmp_path), '…')}")


def test_run_lock_held(tmp_path, scripted):
    cfg = _config(tmp_path)
    scripted.script = [_org()]
    with HistoryStore(tmp_path / "history.sqlite") as store, store.run_lock("demo"):
        code, text = _cli("run", "-c", str(cfg))
    assert code == 5 and text.startswith("error: another run of source 'demo'"), text
    assert scripted.calls == []
    _done("run-lock-held", "exit 5 with a message, nothing pulled",
          f"exit 5: {text.replace(str(tmp_path), '…')}")


def test_history_lists_runs_on_a_full_disk(tmp_path, scripted):
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.system(f"mount -t tmpfs -o size=4m tmpfs {disk} 2>/dev/null") != 0:
        pytest.skip("needs to mount a tmpfs (root)")
    try:
        cfg = _config(tmp_path, history=str(disk / "h.sqlite"))
        scripted.script = [_org()]
        assert _cli("run", "-c", str(cfg))[0] == 0
        with open(disk / "filler", "wb") as fh, pytest.raises(OSError):
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        code, text = _cli("history", "-c", str(cfg))
    finally:
        os.system(f"umount -l {disk}")
    assert code == 0 and "success" in text, text
    _done("history-on-full-disk", "still lists the runs",
          f"exit 0, {len(text.splitlines()) - 1} run listed (opened read-only, immutable)")
