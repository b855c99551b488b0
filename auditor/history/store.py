"""The history store: one SQLite file holding runs, their findings and metrics, the last
snapshot of each source, and stage history derived between runs.

Write discipline (what keeps the store intact when a run dies):

- a run is inserted as ``running`` at its start, in its own tiny transaction, so even a killed
  run leaves a visible row;
- everything else the run produces is written by :meth:`HistoryStore.commit_run` in ONE
  transaction that ends by setting the status to ``success``: a crash before the COMMIT leaves
  the store exactly as the previous run left it (SQLite's WAL journal guarantees that);
- a run that fails with an exception is marked ``failed`` with its (redacted) message;
- a ``running`` row whose process is gone (SIGKILL, power cut) is marked ``interrupted`` the
  next time any process opens the store.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from auditor.errors import AuditorError, RunLockedError
from auditor.files import (
    PRIVATE_FILE,
    create_private,
    is_disk_full,
    mkdir_private,
    write_private,
)
from auditor.history.findings import (
    FINDINGS_FORMAT,
    SCHEMA,
    STORED_VIOLATION_COLUMNS,  # noqa: F401  (re-exported: callers import it from here)
    findings_table,
    frame,
    read_findings,
    read_fingerprints,
    to_parquet,
)
from auditor.history.frames import snapshot_from_blobs, snapshot_to_blobs
from auditor.history.schema import SCHEMA_VERSION, migrate, schema_version
from auditor.na import na_to_none
from auditor.secrets import redact
from auditor.snapshot import Snapshot

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)

try:  # the PostgreSQL backend's driver errors are reported like SQLite's
    from psycopg import Error as _PgError

    DB_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, _PgError)
except ImportError:  # pragma: no cover - psycopg is a dependency
    DB_ERRORS = (sqlite3.Error,)

RUN_COLUMNS = [
    "id",
    "source",
    "source_type",
    "status",
    "started_at",
    "finished_at",
    "as_of",
    "incremental",
    "records",
    "violations",
    "suppressed",
    "score",
    "duration_s",
    "api_calls",
    "counts",
    "error",
]
#: snapshot files live in ``<store file><SNAPSHOT_DIR_SUFFIX>/``
SNAPSHOT_DIR_SUFFIX = ".snapshots"
SNAPSHOT_FILE_SUFFIX = ".parquet-frames"
_FRAMES = ("opportunities", "stage_history", "owners")
#: a ``running`` row from another host older than this is taken for dead
STALE_AFTER = timedelta(hours=24)

#: run columns a successful run's summary sets
_SUMMARY_COLUMNS = [
    "finished_at",
    "as_of",
    "incremental",
    "records",
    "violations",
    "suppressed",
    "score",
    "duration_s",
    "api_calls",
    "counts",
]

# run ids this process has begun and not yet finished: never "stale" while we hold them
_active_lock = threading.Lock()
_active_runs: set[tuple[str, int]] = set()


# run locks: one lock file descriptor per store file for the whole process (closing any
# descriptor of a file drops all of the process's POSIX locks on it), and the (store, source)
# pairs this process holds
_locks_guard = threading.Lock()
_lock_fds: dict[str, int] = {}
_held_locks: set[tuple[str, str]] = set()


def _lock_key(path: Path, source: str) -> tuple[str, str]:
    return (str(Path(path).resolve()), source)


def _lock_fd(path: Path) -> int:
    lock_path = Path(path).resolve()
    lock_path = lock_path.with_name(lock_path.name + ".lock")
    with _locks_guard:
        fd = _lock_fds.get(str(lock_path))
        if fd is None:
            try:
                fd = os.open(
                    lock_path,
                    os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC,
                    PRIVATE_FILE,
                )
            except OSError as exc:
                raise HistoryError(
                    f"history store {path}: cannot open its lock file {lock_path}: "
                    f"{exc.strerror or exc}"
                ) from None
            _lock_fds[str(lock_path)] = fd
        return fd


class HistoryError(AuditorError):
    """The history file cannot be opened, is damaged, or was written by a newer version."""


class HistoryDiskFullError(HistoryError):
    """SQLite could not write because the disk is full: nothing of the run was stored."""

    exit_code = 3


def _is_full(exc: sqlite3.Error, path: Path | None = None) -> bool:
    """SQLITE_FULL, or an I/O error on a file system with no space left (creating the WAL
    index, -shm, fails with SQLITE_IOERR_SHMSIZE rather than SQLITE_FULL)."""
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or (
        "database or disk is full" in str(exc)
    ):
        return True
    code = getattr(exc, "sqlite_errorcode", 0) or 0
    if path is None or code & 0xFF != sqlite3.SQLITE_IOERR:
        return False
    try:
        st = os.statvfs(Path(path).parent)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 16


def _sqlite_errors(what: str) -> Callable[[F], F]:
    """Turn a SQLite failure (locked too long, disk full, damaged file) into a HistoryError."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(self: HistoryStore, *args: Any, **kwargs: Any) -> Any:
            try:
                return fn(self, *args, **kwargs)
            except DB_ERRORS as exc:
                if isinstance(exc, sqlite3.Error) and _is_full(exc, self.path):
                    raise HistoryDiskFullError(
                        f"history store {self.path}: {what} failed: the disk is full; the store "
                        "keeps its previous runs and the previous reports are unchanged. Free "
                        "some space and run again"
                    ) from None
                raise HistoryError(f"history store {self.path}: {what} failed: {exc}") from None

        return inner  # type: ignore[return-value]

    return wrap


@dataclass
class Prepared:
    """A run's findings and snapshot encoded for :meth:`HistoryStore.commit_run`."""

    run_id: int
    source: str
    findings: bytes  # Parquet
    fingerprints: pa.ChunkedArray  # sorted
    snapshot_blobs: dict[str, Any] | None
    staged: tuple[str, str] | None  # the snapshot file written for it: (name, layout JSON)


@dataclass
class StoredSnapshot:
    snapshot: Snapshot
    run_id: int | None
    pull_started_at: datetime


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class HistoryStore:
    """Open (creating and migrating as needed) the history file at ``path``."""

    def __init__(
        self, path: Path | str, *, timeout_s: float = 30.0, readonly: bool = False
    ) -> None:
        """``readonly``: for listing (``crm-audit history``): no migration, no bookkeeping
        writes, and it still opens when the disk is completely full."""
        self.path = Path(path)
        if readonly:
            self.conn = self._open_readonly(timeout_s)
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            create_private(self.path)  # 0600; SQLite gives -wal / -shm the same mode
            # autocommit mode: transactions are explicit (BEGIN IMMEDIATE … COMMIT)
            self.conn = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"history store {self.path}: cannot open: {exc}") from None
        try:
            self.conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            found = schema_version(self.conn)
            if found > SCHEMA_VERSION:
                raise HistoryError(
                    f"history store {self.path} has schema version {found}, newer than this "
                    f"crm-audit understands ({SCHEMA_VERSION}); upgrade crm-audit or point "
                    "`history.path` at another file"
                )
            self.conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL is crash-safe in WAL mode (a process crash never loses a commit)
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            migrate(self.conn)
            try:
                self.mark_stale_runs()
            except sqlite3.OperationalError as exc:
                if not _is_full(exc, self.path):
                    raise
                # bookkeeping only: the next open marks them; the run fails cleanly later
                log.warning("history store %s: disk full, stale runs not marked", self.path)
        except sqlite3.OperationalError as exc:  # locked by another writer for too long, ...
            self.conn.close()
            if _is_full(exc, self.path):
                raise HistoryDiskFullError(
                    f"history store {self.path}: cannot open: the disk is full; free some space "
                    "and run again"
                ) from None
            raise HistoryError(f"history store {self.path}: cannot open: {exc}") from None
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise HistoryError(
                f"history store {self.path} is not a readable SQLite history file: {exc}"
            ) from None
        except BaseException:
            self.conn.close()
            raise

    def _open_readonly(self, timeout_s: float) -> sqlite3.Connection:
        """Read-only connection; on a completely full disk SQLite cannot create the WAL index
        (-shm) a normal reader needs, so fall back to reading the file as immutable (it holds
        every committed run once the last writer closed it)."""
        if not self.path.is_file():
            raise HistoryError(f"history store {self.path}: cannot open: no such file")
        uri = self.path.resolve().as_uri()
        last: sqlite3.Error | None = None
        for query in ("?mode=ro", "?mode=ro&immutable=1"):
            conn = sqlite3.connect(uri + query, uri=True, timeout=timeout_s, isolation_level=None)
            try:
                found = schema_version(conn)
                if found != SCHEMA_VERSION:
                    conn.close()
                    raise HistoryError(
                        f"history store {self.path} has schema version {found}; this crm-audit "
                        f"reads version {SCHEMA_VERSION} (a run with this version upgrades it)"
                    )
                conn.execute("SELECT count(*) FROM runs").fetchone()
                return conn
            except sqlite3.DatabaseError as exc:
                conn.close()
                last = exc
        raise HistoryError(f"history store {self.path}: cannot open: {last}") from None

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def run_lock(self, source: str, wait_s: float = 0.0) -> Iterator[None]:
        """Hold the run lock of ``source`` on this store: one run at a time per store and source.

        Waits up to ``wait_s`` seconds for a run holding it, then raises
        :class:`~auditor.errors.RunLockedError` (exit status 5). Released when the block ends,
        and by the operating system when the process dies (SIGKILL included), so a killed run
        never leaves a stale lock. Another backend implements the same contract with its own
        primitive (PostgreSQL: ``pg_try_advisory_lock`` on a hash of the source).

        SQLite: a byte-range lock (``fcntl``) at an offset derived from the source, in
        ``<history file>.lock`` (0600, never deleted), plus an in-process registry because POSIX
        locks do not exclude threads of one process.
        """
        key = _lock_key(self.path, source)
        fd = _lock_fd(self.path)
        offset = int.from_bytes(hashlib.sha256(source.encode("utf-8")).digest()[:4], "big")
        deadline = time.monotonic() + max(0.0, wait_s)
        told = False
        while True:
            with _locks_guard:
                if key not in _held_locks:
                    try:
                        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
                    except OSError:
                        pass
                    else:
                        _held_locks.add(key)
                        break
            if time.monotonic() >= deadline:
                raise RunLockedError(
                    f"another run of source {source!r} is in progress on history store "
                    f"{self.path}{self._holder(source)}; waited {wait_s:g} s "
                    "(`history.lock_wait_s`). Run again when it has finished, or raise "
                    "`history.lock_wait_s`"
                )
            if not told:
                log.warning(
                    "waiting up to %g s for the run of %r in progress on %s%s",
                    wait_s, source, self.path, self._holder(source),
                )
                told = True
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        try:
            yield
        finally:
            with _locks_guard:
                fcntl.lockf(fd, fcntl.LOCK_UN, 1, offset)
                _held_locks.discard(key)

    def _holder(self, source: str) -> str:
        """' (run 7, pid 123 on host, started …)' for the message, when the store knows it."""
        try:
            r = self.conn.execute(
                "SELECT id, pid, host, started_at FROM runs WHERE source = ? AND "
                "status = 'running' ORDER BY id DESC LIMIT 1",
                (source,),
            ).fetchone()
        except sqlite3.Error:
            return ""
        if r is None:
            return ""
        return f" (run {r[0]}, pid {r[1]} on {r[2]}, started {str(r[3])[:19]} UTC)"

    def _key(self, run_id: int) -> tuple[str, int]:
        return (str(self.path.resolve()), run_id)

    def mark_stale_runs(self) -> int:
        """Mark ``running`` rows that cannot still be running as ``interrupted``.

        On this host: the process is gone (or it is this process, which did not start it).
        On another host (a Kubernetes pod has its own name): started more than
        :data:`STALE_AFTER` ago, longer than any audit runs.
        """
        host = socket.gethostname()
        rows = self.conn.execute(
            "SELECT id, pid, host, started_at FROM runs WHERE status = 'running'"
        ).fetchall()
        with _active_lock:
            active = set(_active_runs)
        cutoff = datetime.now(UTC) - STALE_AFTER
        stale = []
        for rid, pid, run_host, started in rows:
            if self._key(rid) in active:
                continue
            if run_host == host:
                if pid is None or pid == os.getpid() or not _pid_alive(pid):
                    stale.append(rid)
            elif datetime.fromisoformat(started) < cutoff:
                stale.append(rid)
        for rid in stale:
            self.conn.execute(
                "UPDATE runs SET status = 'interrupted', "
                "error = 'the process running it ended before it finished' "
                "WHERE id = ? AND status = 'running'",
                (rid,),
            )
        return len(stale)

    # -- writing a run ---------------------------------------------------------------------------

    @_sqlite_errors("recording the run start")
    def begin_run(
        self,
        source: str,
        source_type: str | None = None,
        *,
        started_at: datetime | None = None,
        as_of: str | None = None,
        config_origin: str | None = None,
    ) -> int:
        """Record a run as ``running`` (its own transaction); returns its id."""
        cur = self.conn.execute(
            "INSERT INTO runs (source, source_type, status, started_at, as_of, pid, host, "
            "config_origin) VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
            (
                source,
                source_type,
                (started_at or datetime.now(UTC)).isoformat(),
                as_of,
                os.getpid(),
                socket.gethostname(),
                config_origin,
            ),
        )
        run_id = int(cur.lastrowid)
        with _active_lock:
            _active_runs.add(self._key(run_id))
        return run_id

    @_sqlite_errors("recording the failure")
    def fail_run(self, run_id: int, error: object, status: str = "failed") -> None:
        """Mark a run failed (its own transaction); the message is redacted."""
        try:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            self.conn.execute(
                "UPDATE runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                (status, _now(), redact(error)[:2000], run_id),
            )
            row = self.conn.execute("SELECT source FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is not None:  # a snapshot file prepared for it is of no use now
                self._drop_snapshot_files(row[0], only=run_id)
        finally:
            with _active_lock:
                _active_runs.discard(self._key(run_id))

    @_sqlite_errors("storing the run")
    def commit_run(
        self,
        run_id: int,
        *,
        summary: dict[str, Any],
        violations: pd.DataFrame,
        metrics: dict[str, Any],
        snapshot: Snapshot | None = None,
        pull_started_at: datetime | None = None,
        derived_rows: pd.DataFrame | None = None,
        snapshot_blobs: dict[str, Any] | None = None,
        prepared: Prepared | None = None,
    ) -> None:
        """Write everything a run produced and mark it ``success``, in one transaction.

        ``prepared`` is :meth:`prepare`'s result for this run (findings and snapshot already
        encoded, the snapshot file written), so a caller can do that on another thread while it
        renders reports; ``snapshot_blobs`` is ``snapshot`` already encoded
        (``snapshot_to_blobs``).

        ``summary`` holds the run row's columns (finished_at, records, violations, score, ...).
        ``snapshot`` replaces the source's stored snapshot; ``derived_rows`` are appended to the
        source's derived stage history.
        """
        source = self.conn.execute("SELECT source FROM runs WHERE id = ?", (run_id,)).fetchone()
        if source is None:
            raise HistoryError(f"history store {self.path}: run {run_id} does not exist")
        source = source[0]
        if prepared is None or (prepared.run_id, prepared.source) != (run_id, source):
            prepared = self.prepare(
                run_id, source, findings_table(violations), snapshot,
                snapshot_blobs=snapshot_blobs,
            )
        blobs, staged = prepared.snapshot_blobs, prepared.staged
        findings, fingerprints = prepared.findings, prepared.fingerprints
        if staged:
            # the old snapshot file is deleted right after this commit, so the commit itself
            # must survive a power cut (NORMAL would only guarantee it against a crash)
            self._synchronous("FULL")
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(
                "INSERT INTO run_findings (run_id, format, row_count, data) VALUES (?, ?, ?, ?)",
                (run_id, FINDINGS_FORMAT, len(fingerprints), findings),
            )
            self._insert_fingerprints(run_id, fingerprints)
            self._insert_metrics(run_id, metrics)
            if blobs is not None:
                inline = [None] * 3 if staged else [blobs[k] for k in _FRAMES]
                self.conn.execute(
                    "INSERT OR REPLACE INTO snapshots (source, run_id, pull_started_at, format, "
                    "meta, file, file_layout, opportunities, stage_history, owners) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        source,
                        run_id,
                        (pull_started_at or datetime.now(UTC)).isoformat(),
                        blobs["format"],
                        blobs["meta"],
                        *(staged or (None, None)),
                        *inline,
                    ),
                )
            if derived_rows is not None and len(derived_rows):
                self._insert_derived(source, run_id, derived_rows)
            row = {k: na_to_none(summary.get(k)) for k in _SUMMARY_COLUMNS}
            row["counts"] = json.dumps(summary.get("counts") or {}, default=str)
            row["finished_at"] = row["finished_at"] or _now()
            row["incremental"] = int(bool(row["incremental"]))
            sets = ", ".join(f"{k} = ?" for k in row)
            self.conn.execute(
                f"UPDATE runs SET {sets}, status = 'success', error = NULL WHERE id = ?",
                (*row.values(), run_id),
            )
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if staged:
                self._snapshot_dir().joinpath(staged[0]).unlink(missing_ok=True)
            raise
        finally:
            if staged:
                self._synchronous("NORMAL")
        with _active_lock:
            _active_runs.discard(self._key(run_id))
        if staged:
            self._drop_snapshot_files(source, keep=staged[0])

    # -- snapshot files (SQLite) ---------------------------------------------------------------
    #
    # A snapshot is most of a run's bytes (95 MB at a million opportunities). In the database
    # it would be written twice, to the write-ahead log and again at the checkpoint; in its own
    # file it is written once. The row in ``snapshots`` names the file; the file is written and
    # fsync'ed before the transaction that names it commits, and the file it replaces is deleted
    # only after. So a crash at any point leaves the stored snapshot readable: at worst an
    # unreferenced file stays behind, which the next commit of that source deletes.

    def _synchronous(self, level: str) -> None:
        self.conn.execute(f"PRAGMA synchronous = {level}")

    def _snapshot_dir(self) -> Path:
        return self.path.with_name(self.path.name + SNAPSHOT_DIR_SUFFIX)

    def _snapshot_file_name(self, source: str, run_id: int) -> str:
        return f"{_source_key(source)}-{run_id}{SNAPSHOT_FILE_SUFFIX}"

    def prepare(
        self,
        run_id: int,
        source: str,
        findings: pa.Table,
        snapshot: Snapshot | None = None,
        *,
        snapshot_blobs: dict[str, Any] | None = None,
    ) -> Prepared:
        """The slow part of :meth:`commit_run`, without the database: the findings
        (:func:`~auditor.history.findings.findings_table`) as Parquet and their sorted
        fingerprints, the snapshot encoded and, on SQLite, already written to its file.
        Another thread may call this while the reports render (Arrow, zstd and file writes
        release the GIL). Until a commit names it the file is not part of the store; a failed
        run's file is deleted by :meth:`fail_run`, a killed run's by the source's next commit.
        """
        blobs = snapshot_blobs
        if blobs is None and snapshot is not None:
            blobs = snapshot_to_blobs(snapshot)
        fps = findings["fingerprint"]
        # sorted, the fingerprints append to the (run_id, fingerprint) index page after page
        # (in the engine's order they land all over it: six times slower at 1M)
        return Prepared(
            run_id=run_id,
            source=source,
            findings=to_parquet(findings),
            fingerprints=fps.take(pc.array_sort_indices(fps)),
            snapshot_blobs=blobs,
            # written and fsync'ed before the commit that names it (SQLite only)
            staged=self._stage_snapshot(source, run_id, blobs) if blobs is not None else None,
        )

    def _stage_snapshot(
        self, source: str, run_id: int, blobs: dict[str, Any]
    ) -> tuple[str, str] | None:
        """Write the frames one after the other to a new file; (its name, its layout JSON)."""
        folder = self._snapshot_dir()
        name = self._snapshot_file_name(source, run_id)
        frames = [memoryview(blobs[k]) for k in _FRAMES]
        crc = 0
        for f in frames:
            crc = zlib.crc32(f, crc)
        layout = json.dumps({"sizes": [len(f) for f in frames], "crc32": crc})
        try:
            mkdir_private(folder)
            target = folder / name
            target.unlink(missing_ok=True)  # a leftover of this very run id (rolled back)
            write_private(target, frames, sync=True)
            dfd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(dfd)  # the new name itself survives a power cut
            finally:
                os.close(dfd)
        except OSError as exc:
            (folder / name).unlink(missing_ok=True)
            if is_disk_full(exc):
                raise HistoryDiskFullError(
                    f"history store {self.path}: storing the run failed: the disk is full "
                    f"({folder}); the store keeps its previous runs and the previous reports "
                    "are unchanged. Free some space and run again"
                ) from None
            raise HistoryError(
                f"history store {self.path}: cannot write the snapshot file {folder / name}: "
                f"{exc.strerror or exc}"
            ) from None
        return name, layout

    def _drop_snapshot_files(
        self, source: str, keep: str | None = None, only: int | None = None
    ) -> None:
        """Delete the source's snapshot files but ``keep`` and those of runs in progress (or
        only the file of run ``only``)."""
        folder = self._snapshot_dir()
        prefix = f"{_source_key(source)}-"
        if only is not None:
            with contextlib.suppress(OSError):
                (folder / self._snapshot_file_name(source, only)).unlink()
            return
        try:
            names = [n for n in os.listdir(folder) if n.startswith(prefix) and n != keep]
        except OSError:
            return
        running = {r[0] for r in self.conn.execute(
            "SELECT id FROM runs WHERE source = ? AND status = 'running'", (source,))}
        for n in names:
            rid = n[len(prefix):].split(".", 1)[0]
            if rid.isdigit() and int(rid) in running:
                continue  # another process is about to commit it
            with contextlib.suppress(OSError):
                (folder / n).unlink()

    def _read_snapshot_file(self, source: str, name: str, layout: str) -> list[bytes]:
        path = self._snapshot_dir() / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise HistoryError(
                f"history store {self.path}: the stored snapshot of {source!r} is missing "
                f"({path}: {exc.strerror or exc}); run with --full"
            ) from None
        spec = json.loads(layout)
        if len(data) != sum(spec["sizes"]) or zlib.crc32(data) != spec["crc32"]:
            raise HistoryError(
                f"history store {self.path}: the stored snapshot of {source!r} is damaged "
                f"({path} does not match its size and checksum); run with --full"
            )
        out, at = [], 0
        for size in spec["sizes"]:
            out.append(data[at : at + size])
            at += size
        return out

    def _insert_fingerprints(self, run_id: int, fingerprints: pa.ChunkedArray) -> None:
        """All of a run's fingerprints in one statement: SQLite splits one JSON array (built
        by Arrow) with ``json_each``, so no Python object is made per finding."""
        if not len(fingerprints):
            return
        self.conn.execute(
            "INSERT INTO findings (run_id, fingerprint) SELECT ?, value FROM json_each(?)",
            (run_id, _json_array(fingerprints)),
        )

    def _insert_metrics(self, run_id: int, metrics: dict[str, Any]) -> None:
        self.conn.executemany(
            "INSERT INTO metrics (run_id, name, value) VALUES (?, ?, ?)",
            [(run_id, k, json.dumps(v, default=str)) for k, v in metrics.items()],
        )

    def _insert_derived(self, source: str, run_id: int, rows: pd.DataFrame) -> None:
        entered = rows["entered_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        data = zip(
            rows["opportunity_id"].astype(object),
            rows["stage"].astype(str),
            rows["source_stage"].astype(object).where(rows["source_stage"].notna(), None),
            entered.astype(object),
            rows["basis"].astype(str),
            strict=True,
        )
        self.conn.executemany(
            "INSERT INTO derived_history (source, opportunity_id, stage, source_stage, "
            "entered_at, basis, run_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(source, o, s, ss, e, b, run_id) for o, s, ss, e, b in data],
        )

    # -- reading -------------------------------------------------------------------------------

    @_sqlite_errors("listing runs")
    def runs(self, *, source: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """Most recent runs first."""
        where, args = ("WHERE source = ?", [source]) if source else ("", [])
        cur = self.conn.execute(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM runs {where} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        )
        out = []
        for r in cur.fetchall():
            d = dict(zip(RUN_COLUMNS, r, strict=True))
            d["counts"] = json.loads(d["counts"]) if d["counts"] else {}
            d["incremental"] = bool(d["incremental"])
            out.append(d)
        return out

    def run(self, run_id: int) -> dict[str, Any] | None:
        cols = ", ".join(RUN_COLUMNS)
        cur = self.conn.execute(f"SELECT {cols} FROM runs WHERE id = ?", (run_id,))
        r = cur.fetchone()
        if r is None:
            return None
        d = dict(zip(RUN_COLUMNS, r, strict=True))
        d["counts"] = json.loads(d["counts"]) if d["counts"] else {}
        return d

    @_sqlite_errors("reading the previous run")
    def last_successful_run(self, source: str) -> dict[str, Any] | None:
        r = self.conn.execute(
            "SELECT id FROM runs WHERE source = ? AND status = 'success' ORDER BY id DESC LIMIT 1",
            (source,),
        ).fetchone()
        return self.run(r[0]) if r else None

    @_sqlite_errors("reading the trend")
    def successful_runs(self, source: str, limit: int) -> list[dict[str, Any]]:
        """The last ``limit`` successful runs of ``source``, oldest first."""
        rows = self.conn.execute(
            "SELECT id, finished_at, score, violations, as_of FROM runs "
            "WHERE source = ? AND status = 'success' ORDER BY id DESC LIMIT ?",
            (source, limit),
        ).fetchall()
        return [
            {"run_id": i, "finished_at": f, "score": s, "violations": v, "as_of": a}
            for i, f, s, v, a in reversed(rows)
        ]

    def _findings_blob(self, run_id: int) -> bytes | None:
        row = self.conn.execute(
            "SELECT format, data FROM run_findings WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            return None
        if row[0] != FINDINGS_FORMAT:
            raise HistoryError(
                f"history store {self.path}: the findings of run {run_id} have format "
                f"{row[0]!r}, which this version cannot read; upgrade crm-audit"
            )
        return bytes(row[1])

    @_sqlite_errors("reading findings")
    def violations(self, run_id: int, fingerprints: list[str] | None = None) -> pd.DataFrame:
        """A run's stored findings, sorted by rule code and record id; only those with the
        given fingerprints when given (in stored order)."""
        data = self._findings_blob(run_id)
        if data is None:  # no such run, or not a successful one: nothing stored
            return frame(SCHEMA.empty_table())
        return read_findings(data, fingerprints)

    @_sqlite_errors("reading fingerprints")
    def fingerprints(self, run_id: int) -> pd.Series:
        """The fingerprints of a run's stored findings (all a diff needs to count)."""
        data = self._findings_blob(run_id)
        if data is None:
            return pd.Series([], dtype="string[pyarrow]")
        return pd.Series(pd.arrays.ArrowStringArray(read_fingerprints(data)),
                         dtype="string[pyarrow]")

    def metrics(self, run_id: int) -> dict[str, Any]:
        cur = self.conn.execute("SELECT name, value FROM metrics WHERE run_id = ?", (run_id,))
        return {n: json.loads(v) for n, v in cur.fetchall()}

    @_sqlite_errors("reading the stored snapshot")
    def last_snapshot(self, source: str) -> StoredSnapshot | None:
        r = self.conn.execute(
            "SELECT run_id, pull_started_at, format, meta, file, file_layout, opportunities, "
            "stage_history, owners FROM snapshots WHERE source = ?",
            (source,),
        ).fetchone()
        if r is None:
            return None
        run_id, started, fmt, meta, file, layout, opp, hist, owners = r
        if fmt != "parquet-zstd/1":
            raise HistoryError(
                f"history store {self.path}: stored snapshot of {source!r} has format {fmt!r}, "
                "which this version cannot read; run with --full"
            )
        if file is not None:
            opp, hist, owners = self._read_snapshot_file(source, file, layout)
        snap = snapshot_from_blobs(meta, opp, hist, owners)
        return StoredSnapshot(snap, run_id, datetime.fromisoformat(started))

    @_sqlite_errors("reading observed stage history")
    def derived_history(self, source: str) -> pd.DataFrame:
        """Derived stage history of ``source`` in insertion order (columns as stored)."""
        cur = self.conn.execute(
            "SELECT opportunity_id, stage, source_stage, entered_at, basis, run_id "
            "FROM derived_history WHERE source = ? ORDER BY rowid",
            (source,),
        )
        df = pd.DataFrame(
            cur.fetchall(),
            columns=["opportunity_id", "stage", "source_stage", "entered_at", "basis", "run_id"],
        )
        df["entered_at"] = pd.to_datetime(df["entered_at"], utc=True, format="ISO8601")
        return df

    def integrity_check(self) -> str:
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])

    # -- deleting ------------------------------------------------------------------------------

    @_sqlite_errors("deleting a source")
    def forget_source(self, source: str) -> int:
        """Delete every run, finding, snapshot and derived history row of ``source``."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            n = self.conn.execute("DELETE FROM runs WHERE source = ?", (source,)).rowcount
            self.conn.execute("DELETE FROM snapshots WHERE source = ?", (source,))
            self.conn.execute("DELETE FROM derived_history WHERE source = ?", (source,))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self._drop_snapshot_files(source)
        return n


def _source_key(source: str) -> str:
    """File-name-safe key of a source name (names may hold any character)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def _json_array(strings: pa.ChunkedArray) -> str:
    """'["a","b"]' from Arrow strings, joined by Arrow (no Python object per string)."""
    flat = strings.combine_chunks()
    if pc.any(pc.match_substring_regex(flat, r"[\x00-\x1f]")).as_py():
        return json.dumps(flat.to_pylist())  # control characters: JSON's own escapes
    escaped = pc.replace_substring(pc.replace_substring(flat, "\\", "\\\\"), '"', '\\"')
    quoted = pc.binary_join_element_wise('"', escaped, '"', "")
    one = pa.ListArray.from_arrays(pa.array([0, len(quoted)], pa.int32()), quoted)
    return "[" + pc.binary_join(one, ",")[0].as_py() + "]"


def open_for_reading(path: Path | str) -> HistoryStore:
    """A store to list runs from: opened normally (stale runs get marked ``interrupted``), or
    read-only when the disk is too full for even that (``crm-audit history`` after a full
    disk)."""
    try:
        return HistoryStore(path)
    except HistoryDiskFullError:
        return HistoryStore(path, readonly=True)
