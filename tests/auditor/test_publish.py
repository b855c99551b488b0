"""Outputs published whole (#13 item 6, #17 items 4 and 8): one run per output folder, with a
manifest; a failed run leaves the previous set untouched; files 0600, never written through a
symlink; unusable output folders refused before the pull; unique digest names."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from auditor.app.cli import main
from auditor.app.publish import MANIFEST, verify
from auditor.app.run import execute
from auditor.errors import ConfigError
from auditor.history import HistoryStore
from auditor.snapshot import Snapshot
from connectors.demo import generate_demo_org
from tests.auditor.conftest import AS_OF, make_config

DAY = date.fromisoformat(AS_OF)


def _org(seed: int = 5, n: int = 300) -> Snapshot:
    return generate_demo_org(n, seed=seed, as_of=DAY).snapshot


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _siblings(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out."))


def test_output_folder_holds_exactly_the_last_run_with_its_manifest(tmp_path, scripted):
    scripted.script = [_org(1), _org(2)]
    cfg = make_config(tmp_path, report={"formats": ["json", "csv", "md"], "digests": True})
    out = tmp_path / "out"
    first = execute(cfg, out_dir=out)
    assert verify(out)["run_id"] == first.run_id
    second = execute(cfg, out_dir=out)
    manifest = verify(out)  # every file listed with size and SHA-256, nothing else present
    assert (manifest["run_id"], manifest["source"], manifest["as_of"]) == (
        second.run_id, "demo", AS_OF)
    assert json.loads((out / "run.json").read_text())["run_id"] == second.run_id
    listed = {f["path"] for f in manifest["files"]}
    assert {"run.json", "violations.csv", "report.md", "metrics.json"} <= listed
    assert sorted(str(p.relative_to(out)) for p in second.outputs) == sorted(
        str(p) for p in json.loads((out / "run.json").read_text())["outputs"])
    assert all(p.is_relative_to(out) for p in second.outputs)
    assert _siblings(tmp_path) == []  # no staging folder left beside it


def test_digests_are_only_this_runs_and_names_never_collide(tmp_path, scripted):
    """`j.doe@a` and `j.doe_a` slug alike: each gets its own file; an owner without findings in
    this run has no digest left from an earlier one."""
    snap = _org(3)
    rename = {"U00005": "j.doe@a", "U00004": "j.doe_a"}
    opp = snap.opportunities.copy()
    opp["owner_id"] = opp["owner_id"].astype(object).replace(rename).astype(
        snap.opportunities["owner_id"].dtype)
    owners = snap.owners.copy()
    owners["id"] = owners["id"].astype(object).replace(rename).astype(snap.owners["id"].dtype)
    first = Snapshot(opp, snap.stage_history, owners, snap.meta)
    keep = ~opp["owner_id"].astype(str).eq("j.doe_a").to_numpy()  # j.doe_a's deals are gone
    second = Snapshot(opp[keep].reset_index(drop=True),
                      snap.stage_history[snap.stage_history["opportunity_id"].isin(
                          opp.loc[keep, "id"])].reset_index(drop=True), owners, snap.meta)
    scripted.script = [first, second]
    cfg = make_config(tmp_path, report={"formats": ["txt"], "digests": True})
    out = tmp_path / "out"

    def stem(key: str) -> str:
        return f"owner-j.doe_a-{hashlib.sha256(key.encode()).hexdigest()[:8]}"

    at, under = stem("owner-j.doe@a"), stem("owner-j.doe_a")
    assert at != under
    execute(cfg, out_dir=out)
    digests = out / "digests"
    names = sorted(p.name for p in digests.glob("owner-j.doe*"))
    assert names == sorted(f"{s}.{e}" for s in (at, under) for e in ("html", "txt"))
    by_id = owners.set_index("id")["name"]
    assert by_id["j.doe@a"] in (digests / f"{at}.txt").read_text()
    assert by_id["j.doe_a"] in (digests / f"{under}.txt").read_text()
    assert "owner-U00006.txt" in os.listdir(digests)  # safe ids keep their plain names

    execute(cfg, out_dir=out)
    left = sorted(p.name for p in digests.glob("*j.doe*"))
    assert left == [f"{at}.html", f"{at}.txt"]  # j.doe_a has no findings now: no digest
    verify(out)


def test_a_failed_run_leaves_the_previous_set_untouched(tmp_path, scripted, monkeypatch):
    scripted.script = [_org(1), _org(2)]
    cfg = make_config(tmp_path, report={"formats": ["json", "csv", "md"]})
    out = tmp_path / "out"
    first = execute(cfg, out_dir=out)
    before = _files(out)

    def broken(self, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        raise RuntimeError("storing failed")

    monkeypatch.setattr(HistoryStore, "commit_run", broken)
    with pytest.raises(RuntimeError, match="storing failed"):
        execute(cfg, out_dir=out)
    assert _files(out) == before and verify(out)["run_id"] == first.run_id
    assert _siblings(tmp_path) == []


def test_files_are_private_and_a_planted_symlink_is_never_written_through(tmp_path, scripted):
    """#17 item 4: reports, history and .eml files 0600; a symlink planted in the output folder
    (report.md → a file elsewhere) leaves its target unchanged."""
    scripted.script = [_org(1), _org(2)]
    cfg = make_config(
        tmp_path,
        report={"formats": ["json", "csv", "md", "html", "txt"], "digests": True},
        delivery={"managers": ["boss@example.com"]},
    )
    out = tmp_path / "out"
    execute(cfg, out_dir=out, dry_run=True)
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (out / "report.md").unlink()
    (out / "report.md").symlink_to(target)
    (out / "digests").rename(tmp_path / "elsewhere")
    (out / "digests").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    execute(cfg, out_dir=out, dry_run=True)
    assert target.read_text() == "keep me"
    assert not (out / "report.md").is_symlink() and not (out / "digests").is_symlink()
    verify(out)
    created = [p for p in out.rglob("*")] + sorted(tmp_path.glob("history.sqlite*"))
    assert any(p.suffix == ".eml" for p in created) and any(p.name == "report.md" for p in created)
    for p in created:
        mode = stat.S_IMODE(p.lstat().st_mode)
        assert mode == (0o700 if p.is_dir() else 0o600), (p, oct(mode))
    assert stat.S_IMODE(out.stat().st_mode) == 0o700


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exc_info
    return res.exit_code, res.output


def _config_file(tmp_path: Path, out: str, history: str = "history.sqlite") -> Path:
    cfg = tmp_path / "audit.toml"
    cfg.write_text(
        f'[source]\ntype = "scripted"\nname = "demo"\n[audit]\nas_of = "{AS_OF}"\n'
        f'[history]\npath = "{history}"\n[report]\nout_dir = "{out}"\nformats = ["json"]\n'
    )
    return cfg


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("file", "is an existing file, not a folder"),
        ("root", "refusing to use a file-system root"),
        ("foreign", "holds files crm-audit did not write (notes.txt)"),
    ],
)
def test_unusable_output_folder_is_a_clear_error_before_the_pull(tmp_path, scripted, case,
                                                                 expected):
    """#17 item 8: exit 2 with a message, no traceback, nothing pulled, nothing written."""
    if case == "file":
        out = tmp_path / "report-file"
        out.write_text("not a folder")
    elif case == "root":
        out = Path("/")
    else:
        out = tmp_path / "mine"
        out.mkdir()
        (out / "notes.txt").write_text("my notes")
    scripted.script = [_org(1)]
    cfg = _config_file(tmp_path, str(out))
    before = sorted(os.listdir(out.parent)) if case != "root" else sorted(os.listdir("/"))
    code, output = _cli("run", "-c", str(cfg))
    assert code == 2, output
    assert output.startswith("error: output folder ") and expected in output, output
    assert "Traceback" not in output
    assert scripted.calls == []  # refused before pulling
    after = sorted(os.listdir(out.parent)) if case != "root" else sorted(os.listdir("/"))
    assert after == before  # no staging folder, no history store, nothing
    if case == "foreign":
        assert (out / "notes.txt").read_text() == "my notes"


@pytest.mark.parametrize("where", ["out/report.html", "out", "out/state/h.sqlite"])
def test_history_path_inside_the_output_folder_is_refused(tmp_path, scripted, where):
    """#17 item 8: a history.path equal to a report file (or anywhere in the output folder,
    which each run replaces) is refused before anything is pulled or written."""
    scripted.script = [_org(1)]
    code, output = _cli("run", "-c", str(_config_file(tmp_path, "out", history=where)))
    assert code == 2, output
    assert "key `history.path`" in output and "is inside the output folder" in output
    assert scripted.calls == [] and not (tmp_path / "out").exists()
    with pytest.raises(ConfigError):
        execute(make_config(tmp_path, history={"path": where}), out_dir=tmp_path / "out")


def test_unwritable_output_folder_fails_before_the_pull(tmp_path, scripted):
    """A read-only file system (as root, permissions alone do not stop a write)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.system(f"mount -t tmpfs -o ro,size=1m tmpfs {ro} 2>/dev/null") != 0:
        pytest.skip("needs to mount a read-only tmpfs (root)")
    try:
        scripted.script = [_org(1)]
        code, output = _cli("run", "-c", str(_config_file(tmp_path, str(ro / "out"))))
        assert code == 2, output
        assert f"error: output folder {ro / 'out'}:" in output
        assert "Read-only file system" in output and "must be writable" in output
        assert scripted.calls == []
    finally:
        os.system(f"umount {ro}")


def test_v01_output_folder_is_replaced_and_a_missing_parent_created(tmp_path, scripted):
    old = tmp_path / "deep" / "out"
    old.mkdir(parents=True)
    for name in ("report.html", "violations.csv", "run.json"):
        (old / name).write_text("from v0.1")
    (old / "digests").mkdir()
    (old / "digests" / "owner-X.txt").write_text("stale")
    scripted.script = [_org(1), _org(1)]
    execute(make_config(tmp_path), out_dir=old)
    # the v0.1 files are gone (digests/ now holds this run's own digests, on by default)
    assert not (old / "report.html").exists() and not (old / "digests" / "owner-X.txt").exists()
    verify(old)
    execute(make_config(tmp_path), out_dir=tmp_path / "new" / "x" / "out")
    verify(tmp_path / "new" / "x" / "out")
    assert pd.notna(json.loads((old / MANIFEST).read_text())["run_id"])


def test_output_folder_that_is_a_mount_point_is_refused_before_the_pull(tmp_path, scripted):
    out = tmp_path / "volume"
    out.mkdir()
    if os.system(f"mount -t tmpfs -o size=1m tmpfs {out} 2>/dev/null") != 0:
        pytest.skip("needs to mount a tmpfs (root)")
    try:
        scripted.script = [_org(1)]
        code, output = _cli("run", "-c", str(_config_file(tmp_path, str(out))))
    finally:
        os.system(f"umount {out}")
    assert code == 2 and "is a mount point" in output, output
    assert scripted.calls == []



def test_without_rename_exchange_the_swap_is_two_renames_and_a_half_swap_is_undone(
        tmp_path, scripted, monkeypatch):
    """Systems without renameat2(RENAME_EXCHANGE): out → .out.old-…, staging → out. A run
    killed between the two renames leaves no output folder; the next run restores it first."""
    from auditor.app import publish

    monkeypatch.setattr(publish, "_RENAMEAT2", None)
    scripted.script = [_org(1), _org(2), _org(3)]
    cfg = make_config(tmp_path)
    out = tmp_path / "out"
    execute(cfg, out_dir=out)
    second = execute(cfg, out_dir=out)
    assert verify(out)["run_id"] == second.run_id and _siblings(tmp_path) == []

    # the state a kill between the two renames leaves (pid 999999: no such process)
    out.rename(tmp_path / ".out.old-999999-0badc0de.tmp")
    folder = publish.OutputFolder(out)
    staging = folder.prepare()
    assert verify(out)["run_id"] == second.run_id  # put back before anything else
    folder.discard()
    assert not staging.exists() and _siblings(tmp_path) == []
