"""Publishing a run's files whole: a fresh staging folder, swapped in at the end.

A run writes every file into a new folder beside the output folder
(``.<name>.run-<pid>-<token>.tmp``, mode 0700) and, once the run is stored, swaps it in with
one atomic ``renameat2(RENAME_EXCHANGE)`` (Linux) and deletes the previous set. So at every
instant the output folder holds exactly one complete run, described by its ``manifest.json``;
a killed, failed or disk-full run leaves the previous set untouched, and its staging folder is
removed (at the latest by the next run of any source into the same folder). Files planted in
the output folder (a symlink named ``report.html``) are never written through: nothing is
ever written into the published folder, it is replaced.

Where ``RENAME_EXCHANGE`` is missing (not Linux, or a file system without it) the swap is two
renames; a kill between them leaves ``.<name>.old-…`` beside a missing output folder, and the
next run puts it back before doing anything else.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

from auditor.errors import DiskFullError, OutputError
from auditor.files import PRIVATE_DIR, is_disk_full, write_private

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_VERSION = "1.0"
#: what a v0.1 output folder (before manifests) may hold: such a folder is replaced too
LEGACY_NAMES = frozenset(
    {
        "report.html",
        "report.md",
        "report.txt",
        "assessment.html",
        "assessment.md",
        "violations.csv",
        "violations.json",
        "metrics.json",
        "run.json",
        "digests",
        "outbox",
        "history.sqlite",
        "history.sqlite-wal",
        "history.sqlite-shm",
        "history.sqlite-journal",
        # what file browsers leave behind
        ".DS_Store",
        "Thumbs.db",
        "desktop.ini",
    }
)
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _renameat2() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _renameat2()


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths; False when the system cannot."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def verify(folder: Path) -> dict[str, Any]:
    """Check that ``folder`` holds exactly one complete run: the files its manifest lists, each
    with its size and SHA-256, and nothing else. Returns the manifest; raises ValueError."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise ValueError(f"{folder}: no readable {MANIFEST}")
    listed = {f["path"]: f for f in manifest["files"]}
    present = {
        str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir()
    } - {MANIFEST}
    if present != set(listed):
        raise ValueError(
            f"{folder}: files {sorted(present ^ set(listed))} differ from the manifest"
        )
    for rel, f in listed.items():
        p = folder / rel
        if p.is_symlink() or p.stat().st_size != f["bytes"] or file_digest(p) != f["sha256"]:
            raise ValueError(f"{folder}: {rel} is not the file the manifest names")
    return manifest


class OutputFolder:
    """The output folder of one run: checked before the pull, staged, published at the end."""

    def __init__(self, out: Path) -> None:
        given = Path(out).expanduser()
        # a symlinked output folder is published where it points
        self.path = Path(os.path.abspath(given))
        if self.path.is_symlink():
            self.path = self.path.resolve()
        self.staging: Path | None = None
        self._prefix = f".{self.path.name}."

    # -- before the pull ---------------------------------------------------------------------

    def check(self) -> None:
        """Refuse a folder that cannot or must not be replaced (no side effects)."""
        out = self.path
        if out.parent == out or out == Path(os.path.abspath(os.sep)):
            raise OutputError(
                f"output folder {out}: refusing to use a file-system root; each run replaces "
                "the output folder whole. Set `report.out_dir` (or --out) to a folder of its own"
            )
        if out.exists() and not out.is_dir():
            raise OutputError(
                f"output folder {out} is an existing file, not a folder; remove it or set "
                "`report.out_dir` (or --out) to another path"
            )
        if out.is_dir():
            self._check_ours(out)
            if os.stat(out).st_dev != os.stat(out.parent).st_dev:
                raise OutputError(
                    f"output folder {out} is a mount point (a volume of its own); each run "
                    "swaps in a new folder beside it, which needs the same file system. Mount "
                    "the volume one level up, or set `report.out_dir` (or --out) to a folder "
                    "inside it"
                )

    def prepare(self) -> Path:
        """Check the folder can be published to and create the staging folder (before any
        pull, so an unusable output folder fails fast). Returns the staging folder."""
        self.check()
        out = self.path
        parent = out.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._os_error(exc, f"creating {parent}") from None
        self._recover()
        self._clean_stale()
        name = f"{self._prefix}run-{os.getpid()}-{secrets.token_hex(4)}.tmp"
        staging = parent / name
        try:
            os.mkdir(staging, PRIVATE_DIR)
            # the swap renames the folder; a folder that cannot be renamed fails now, not later
            if out.is_dir() and not os.access(out, os.W_OK):
                raise PermissionError(errno.EACCES, "Permission denied", str(out))
        except OSError as exc:
            if staging.is_dir():
                os.rmdir(staging)
            raise self._os_error(exc, "creating the staging folder") from None
        self.staging = staging
        return staging

    def _check_ours(self, out: Path) -> None:
        """Refuse to replace a folder of other files (a home folder, a project folder)."""
        if (out / MANIFEST).is_file():
            return
        foreign = sorted(p.name for p in out.iterdir() if p.name not in LEGACY_NAMES)
        if foreign:
            shown = ", ".join(foreign[:5]) + (" …" if len(foreign) > 5 else "")
            raise OutputError(
                f"output folder {out} holds files crm-audit did not write ({shown}); each run "
                "replaces the output folder whole, so point `report.out_dir` (or --out) at a "
                "new or empty folder"
            )

    def _os_error(self, exc: OSError, doing: str) -> Exception:
        if is_disk_full(exc):
            return DiskFullError(
                f"output folder {self.path}: the disk is full ({doing}); the previous reports "
                "are unchanged. Free some space and run again"
            )
        reason = exc.strerror or str(exc)
        return OutputError(
            f"output folder {self.path}: {doing} failed: {reason}. A run writes into a new "
            f"folder beside it and swaps it in, so {self.path.parent} must be writable"
        )

    def _siblings(self, kind: str) -> list[Path]:
        pattern = re.compile(re.escape(self._prefix) + kind + r"-(\d+)-[0-9a-f]+\.tmp$")
        try:
            entries = list(self.path.parent.iterdir())
        except OSError:
            return []
        return [p for p in entries if pattern.match(p.name)]

    def _recover(self) -> None:
        """A two-rename swap killed half-way: put the previous set back."""
        if self.path.exists():
            return
        old = self._siblings("old")
        if old:
            newest = max(old, key=lambda p: p.stat().st_mtime)
            os.rename(newest, self.path)
            log.warning("restored the output folder %s from an interrupted swap", self.path)

    def _clean_stale(self) -> None:
        """Remove staging / old folders whose process is gone (killed runs)."""
        for kind in ("run", "old"):
            for p in self._siblings(kind):
                pid = int(p.name[len(self._prefix) + len(kind) + 1 :].split("-")[0])
                if not _pid_alive(pid):
                    shutil.rmtree(p, ignore_errors=True)

    # -- at the end --------------------------------------------------------------------------

    def write_manifest(self, info: dict[str, Any]) -> dict[str, Any]:
        """List every staged file (size, SHA-256) in manifest.json, written last."""
        assert self.staging is not None
        files = [
            {
                "path": str(p.relative_to(self.staging)),
                "bytes": p.stat().st_size,
                "sha256": file_digest(p),
            }
            for p in sorted(self.staging.rglob("*"))
            if p.is_file() and not p.is_symlink()
        ]
        manifest = {"schema_version": MANIFEST_VERSION, **info, "files": files}
        write_private(self.staging / MANIFEST, json.dumps(manifest, indent=1, default=str))
        return manifest

    def publish(self) -> None:
        """Swap the staging folder in; delete the previous set."""
        assert self.staging is not None
        staging, out = self.staging, self.path
        while True:
            if not out.exists() and not out.is_symlink():
                try:
                    os.rename(staging, out)
                    break
                except FileExistsError:
                    continue  # another run published meanwhile: swap with it instead
                except OSError as exc:
                    if exc.errno != errno.ENOTEMPTY:
                        raise
                    continue
            if exchange(staging, out):
                break
            old = out.parent / f"{self._prefix}old-{os.getpid()}-{secrets.token_hex(4)}.tmp"
            os.rename(out, old)
            os.rename(staging, out)
            staging = old
            break
        self.staging = None
        # ``staging`` now names the previous set (or nothing)
        if staging.exists() or staging.is_symlink():
            if staging.is_dir() and not staging.is_symlink():
                shutil.rmtree(staging, ignore_errors=True)
            else:
                staging.unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove the staging folder of a run that did not finish."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
