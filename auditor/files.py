"""Writing files the way SECURITY.md promises: owner-only modes, never through a symlink.

Reports, history and ``.eml`` files hold CRM data (names, amounts, e-mail addresses). Every file
the tool creates goes through :func:`write_private` (a new file, mode 0600, ``O_NOFOLLOW`` and
``O_EXCL`` so a symlink or file planted at the path is never written through) or
:func:`replace_private` (the same into a temporary name, then an atomic rename over the target:
readers see the old or the new file, never half of one).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

#: mode of every file the tool creates (SECURITY.md)
PRIVATE_FILE = 0o600
#: mode of every folder the tool creates
PRIVATE_DIR = 0o700
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC
#: errno values meaning "no space left" (disk full, or the user's quota)
DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def write_private(
    path: Path, data: bytes | str | Sequence[bytes], *, sync: bool = False
) -> Path:
    """Create ``path`` (which must not exist) with mode 0600 and write ``data`` to it (a list
    of byte strings: one after the other, without joining them in memory first); ``sync``:
    fsync it before returning."""
    if isinstance(data, str):
        chunks: Sequence[bytes] = [data.encode("utf-8")]
    elif isinstance(data, bytes | bytearray | memoryview):
        chunks = [data]
    else:
        chunks = data
    fd = os.open(path, _FLAGS, PRIVATE_FILE)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        Path(path).unlink(missing_ok=True)  # no half-written file stays behind
        raise
    os.close(fd)
    return Path(path)


def replace_private(path: Path, data: bytes | str) -> Path:
    """Write ``path`` whole: a private temporary file beside it, then an atomic rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    write_private(tmp, data)
    try:
        os.replace(tmp, path)  # replaces a symlink itself, never its target
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def create_private(path: Path) -> None:
    """Create an empty 0600 file at ``path`` unless something already exists there.

    SQLite creates its files with the process umask (usually 0644) and gives its -wal / -shm
    files the mode of the main file, so creating the main file first makes all three private.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, _FLAGS, PRIVATE_FILE))


def mkdir_private(path: Path) -> Path:
    """Create folder ``path`` with mode 0700 (missing parents as usual); keep an existing one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, PRIVATE_DIR)
    except FileExistsError:
        if not path.is_dir() or path.is_symlink():
            raise
    return path
