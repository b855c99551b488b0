"""Disk full (#13 item 6, #17 item 9): a clear error with exit status 3, the previous output set
untouched, the store intact, and `crm-audit history` still opens the store afterwards.

On a real small tmpfs when the tests may mount one (root), else with ENOSPC injected into the
tool's one file writer."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import auditor.files as files_module
from auditor.app.cli import main
from auditor.app.publish import verify
from auditor.app.run import execute
from auditor.errors import DiskFullError
from auditor.history import HistoryStore
from connectors.demo import generate_demo_org
from tests.auditor.conftest import AS_OF, make_config
from tests.support.disk_full import FullOs

DAY = date.fromisoformat(AS_OF)


def _org(seed: int) -> Any:
    return generate_demo_org(300, seed=seed, as_of=DAY).snapshot


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill the file system, leaving about ``leave`` bytes free."""
    filler = disk / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
                if free <= leave:
                    break
                fh.write(b"\0" * min(1 << 16, max(4096, free - leave)))
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exc_info
    return res.exit_code, res.output


def _config_file(tmp_path: Path, out: Path, history: Path) -> Path:
    cfg = tmp_path / "audit.toml"
    cfg.write_text(
        f'[source]\ntype = "scripted"\nname = "demo"\n[audit]\nas_of = "{AS_OF}"\n'
        f'[history]\npath = "{history}"\n'
        f'[report]\nout_dir = "{out}"\nformats = ["json", "csv", "md", "html"]\n'
    )
    return cfg


@pytest.mark.parametrize("leave", [0, 200_000], ids=["completely-full", "full-mid-run"])
def test_full_disk_is_exit_3_and_the_previous_run_stays_whole(tmp_path, scripted, small_disk,
                                                              leave):
    out, hist = small_disk / "out", small_disk / "history.sqlite"
    cfg = _config_file(tmp_path, out, hist)
    scripted.script = [_org(1), _org(2), _org(3)]
    code, text = _cli("run", "-c", str(cfg))
    assert code == 0, text
    first = verify(out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    filler = fill(small_disk, leave)
    code, text = _cli("run", "-c", str(cfg), "-q")  # -q: no progress lines before the error
    assert code == 3, text
    assert text.startswith("error: ") and "the disk is full" in text, text
    assert "Traceback" not in text
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert verify(out)["run_id"] == first["run_id"]
    names = sorted(p.name for p in small_disk.iterdir() if not p.name.startswith("history."))
    assert names == ["filler", "out"]  # no staging folder left

    # #17 item 9: the store still opens on the full disk
    code, text = _cli("history", "-c", str(cfg), "--json")
    assert code == 0, text
    assert '"status": "success"' in text and f'"id": {first["run_id"]}' in text

    filler.unlink()
    code, text = _cli("run", "-c", str(cfg))
    assert code == 0, text
    third = verify(out)
    with HistoryStore(hist) as store:
        assert store.integrity_check() == "ok"
        statuses = {r["id"]: r["status"] for r in store.runs()}
    assert statuses[first["run_id"]] == statuses[third["run_id"]] == "success"
    assert set(statuses.values()) <= {"success", "failed"}


def test_history_opens_read_only_on_a_completely_full_disk(tmp_path, scripted, small_disk):
    """#17 item 9: a store whose -shm is gone cannot get one on a full disk; listing reads the
    committed runs all the same."""
    hist = small_disk / "h.sqlite"
    cfg = make_config(tmp_path, history={"path": str(hist)})
    scripted.script = [_org(1)]
    run = execute(cfg, out_dir=tmp_path / "out")
    assert not Path(f"{hist}-shm").exists()  # the last close removed it
    fill(small_disk)
    with HistoryStore(hist, readonly=True) as store:
        assert [(r["id"], r["status"]) for r in store.runs()] == [(run.run_id, "success")]




@pytest.mark.parametrize("budget", [0, 5_000, 60_000])
def test_injected_enospc_is_a_disk_full_error_and_publishes_nothing(tmp_path, scripted,
                                                                    monkeypatch, budget):
    scripted.script = [_org(1), _org(2)]
    cfg = make_config(tmp_path, report={"formats": ["json", "csv", "md"]})
    out = tmp_path / "out"
    first = execute(cfg, out_dir=out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    monkeypatch.setattr(files_module, "os", FullOs(budget))
    with pytest.raises(DiskFullError) as err:
        execute(cfg, out_dir=out)
    monkeypatch.undo()
    assert err.value.exit_code == 3
    assert "the disk is full" in str(err.value) and str(out) in str(err.value)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert verify(out)["run_id"] == first.run_id
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []
    with HistoryStore(tmp_path / "history.sqlite") as store:
        last, prev = store.runs()[:2]
    assert (last["status"], prev["id"], prev["status"]) == ("failed", first.run_id, "success")
    assert "No space left on device" in last["error"]
