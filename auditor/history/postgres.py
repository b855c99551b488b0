"""The history store on PostgreSQL (``history.url = "postgresql://..."``).

Same tables, same queries, same write discipline as the SQLite store: :class:`PostgresHistoryStore`
subclasses :class:`HistoryStore` and only swaps the connection for a thin adapter that speaks the
SQLite store's SQL to psycopg (``?`` placeholders, ``BEGIN IMMEDIATE``, ``INSERT OR REPLACE``,
``rowid`` order). What PostgreSQL adds:

- findings are written with ``COPY`` (one round trip per run, not one per finding);
- the per-source run lock is a session advisory lock (``pg_try_advisory_lock``), so it holds
  across machines and is released by the server when the holder's connection dies — a killed
  pod never leaves a stale lock behind;
- a ``running`` row of another host whose source lock is free is known to be dead at once
  (SQLite can only tell for processes on its own host, and waits 24 hours for others).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from auditor.errors import ConfigError, RunLockedError
from auditor.history.pg_schema import PG_MIGRATIONS
from auditor.history.schema import steps
from auditor.history.store import (
    HistoryError,
    HistoryStore,
    _active_lock,
    _active_runs,
)
from auditor.secrets import read_secret, redact

SCHEMA_VERSION = len(PG_MIGRATIONS)
#: advisory-lock key space of this tool: the first 32-bit half of every key we take
_LOCK_NAMESPACE = "crm-hygiene-auditor/run"


def lock_key(source: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``source`` (same on every machine)."""
    digest = hashlib.blake2b(f"{_LOCK_NAMESPACE}\x00{source}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def connect_url(url: str, password_env: str | None, env: Mapping[str, str] | None) -> tuple[
        str, str]:
    """(conninfo for psycopg, the URL to show in messages: never with a password)."""
    import psycopg.conninfo

    plain = re.sub(r"^postgresql\+psycopg2?://", "postgresql://", url)
    plain = re.sub(r"^postgres://", "postgresql://", plain)
    try:
        parts = psycopg.conninfo.conninfo_to_dict(plain)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"key `history.url`: not a PostgreSQL URL ({exc})") from None
    if parts.get("password"):
        raise ConfigError("key `history.url` contains a password; remove it and name an "
                          "environment variable holding it in `history.password_env`")
    if password_env:
        parts["password"] = read_secret(password_env, "history.password_env", env)
    shown = psycopg.conninfo.make_conninfo(**{k: v for k, v in parts.items() if k != "password"})
    return psycopg.conninfo.make_conninfo(**parts), shown


class _Cursor:
    def __init__(self, rows: list[tuple[Any, ...]] | None, rowcount: int,
                 lastrowid: int | None = None) -> None:
        self._rows = rows or []
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows


_UPSERT = re.compile(r"^INSERT OR REPLACE INTO (\w+) \(([^)]*)\)", re.IGNORECASE)
_KEYS = {"snapshots": ["source"]}


class _PgConnection:
    """The slice of ``sqlite3.Connection`` the store uses, on a psycopg connection."""

    def __init__(self, conn: Any) -> None:
        self.raw = conn

    @property
    def in_transaction(self) -> bool:
        import psycopg.pq

        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    @staticmethod
    def translate(sql: str) -> str:
        s = sql.replace("?", "%s")
        if s.strip().upper() == "BEGIN IMMEDIATE":
            return "BEGIN"
        m = _UPSERT.match(s.strip())
        if m:
            table, cols = m.group(1), [c.strip() for c in m.group(2).split(",")]
            keys = _KEYS[table]
            sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in keys)
            s = ("INSERT INTO" + s.strip()[len("INSERT OR REPLACE INTO"):]
                 + f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}")
        s = re.sub(r"\bORDER BY rowid\b", "ORDER BY seq", s)
        if re.match(r"\s*INSERT INTO runs\b", s):
            s += " RETURNING id"
        if "PRAGMA" in s.upper():
            raise sqlite3.NotSupportedError(f"not a PostgreSQL statement: {sql[:60]}")
        return s

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> _Cursor:
        s = self.translate(sql)
        with self.raw.cursor() as cur:
            cur.execute(s, tuple(params) or None)
            rows = cur.fetchall() if cur.description else None
            last = int(rows[0][0]) if rows and s.endswith("RETURNING id") else None
            return _Cursor(rows, cur.rowcount, last)

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        with self.raw.cursor() as cur:
            cur.executemany(self.translate(sql), rows)

    def close(self) -> None:
        self.raw.close()


class PostgresHistoryStore(HistoryStore):
    """Open (creating and migrating as needed) the history database at ``url``."""

    def __init__(self, url: str, *, password_env: str | None = None,
                 env: Mapping[str, str] | None = None, timeout_s: float = 30.0) -> None:
        import psycopg

        conninfo, shown = connect_url(url, password_env, env)
        self.path = shown  # type: ignore[assignment]  # what messages show: no password
        self.url_shown = shown
        try:
            raw = psycopg.connect(conninfo, autocommit=True, connect_timeout=int(timeout_s),
                                  application_name="crm-audit")
        except psycopg.Error as exc:
            raise HistoryError(f"history store {shown}: cannot connect: "
                               f"{redact(str(exc).strip())}") from None
        self.conn = _PgConnection(raw)  # type: ignore[assignment]
        self._locks: dict[str, int] = {}
        try:
            raw.execute(f"SET lock_timeout = '{int(timeout_s * 1000)}ms'")
            self._migrate()
            self.mark_stale_runs()
        except psycopg.Error as exc:
            raw.close()
            raise HistoryError(f"history store {shown}: cannot open: {exc}") from None
        except BaseException:
            raw.close()
            raise

    # -- schema ----------------------------------------------------------------------------
    def schema_version(self) -> int:
        row = self.conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return 0
        got = self.conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(got[0] or 0) if got else 0

    def _migrate(self) -> int:
        found = self.schema_version()
        if found > SCHEMA_VERSION:
            raise HistoryError(
                f"history store {self.path} has schema version {found}, newer than this "
                f"crm-audit understands ({SCHEMA_VERSION}); upgrade crm-audit or point "
                "`history.url` at another database")
        if found == SCHEMA_VERSION:
            return found
        raw = self.conn.raw
        with raw.transaction():
            # one migrator at a time across machines; the others wait, then find it done
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("\x00migrate"),))
            raw.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = self.schema_version()
            for version in range(current, SCHEMA_VERSION):
                for step in steps(PG_MIGRATIONS[version]):
                    if callable(step):
                        step(self.conn)
                    else:
                        raw.execute(step)
            if current < SCHEMA_VERSION:
                raw.execute("DELETE FROM schema_version")
                raw.execute("INSERT INTO schema_version (version) VALUES (%s)",
                            (SCHEMA_VERSION,))
        return found

    def _key(self, run_id: int) -> tuple[str, int]:
        return (self.url_shown, run_id)

    def integrity_check(self) -> str:
        """Orphans the foreign keys forbid, counted (PostgreSQL keeps its pages checksummed)."""
        row = self.conn.execute(
            "SELECT (SELECT count(*) FROM findings v LEFT JOIN runs r ON r.id = v.run_id "
            "WHERE r.id IS NULL) + (SELECT count(*) FROM run_findings v LEFT JOIN runs r "
            "ON r.id = v.run_id WHERE r.id IS NULL) + (SELECT count(*) FROM metrics m "
            "LEFT JOIN runs r ON r.id = m.run_id WHERE r.id IS NULL)").fetchone()
        return "ok" if row and row[0] == 0 else f"{row[0] if row else '?'} orphaned rows"

    # -- faster bulk writes ----------------------------------------------------------------
    def _insert_fingerprints(self, run_id: int, fingerprints: pa.ChunkedArray) -> None:
        """One ``COPY`` of the fingerprints, its text built by Arrow (no Python object per
        finding; fingerprints are hex, escaped anyway as COPY's text format wants)."""
        if not len(fingerprints):
            return
        flat = fingerprints.combine_chunks()
        for old, new in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
            flat = pc.replace_substring(flat, old, new)
        lines = pc.binary_join_element_wise(f"{run_id}\t", flat, "\n", "")
        one = pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines)
        data = pc.binary_join(one, "")[0].as_buffer()
        with self.conn.raw.cursor() as cur, cur.copy(
                "COPY findings (run_id, fingerprint) FROM STDIN") as cp:
            cp.write(memoryview(data))

    # -- snapshots stay in the database (BYTEA, STORAGE EXTERNAL): no local files ---------
    def _stage_snapshot(self, source: str, run_id: int,
                        blobs: dict[str, Any]) -> tuple[str, str] | None:
        return None

    def _drop_snapshot_files(self, source: str, keep: str | None = None,
                             only: int | None = None) -> None:
        return None

    # -- liveness and the run lock ---------------------------------------------------------
    def mark_stale_runs(self) -> int:
        n = super().mark_stale_runs()
        host = socket.gethostname()
        rows = self.conn.execute(
            "SELECT id, source, host FROM runs WHERE status = 'running'").fetchall()
        with _active_lock:
            active = set(_active_runs)
        for rid, source, run_host in rows:
            if self._key(rid) in active or run_host == host or source in self._locks:
                continue
            # a live run holds its source's lock for its whole life: free lock = dead run
            got = self.conn.execute("SELECT pg_try_advisory_lock(%s)",
                                    (lock_key(source),)).fetchone()
            if got and got[0]:
                self.conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(source),))
                n += self.conn.execute(
                    "UPDATE runs SET status = 'interrupted', error = 'the process running it "
                    "ended before it finished (its run lock was free)' "
                    "WHERE id = ? AND status = 'running'", (rid,)).rowcount
        return n

    @contextmanager
    def run_lock(self, source: str, wait_s: float = 0.0) -> Iterator[None]:
        """Hold the source's run lock for the block; another holder (any machine) makes it
        raise :class:`RunLockedError` after ``wait_s`` seconds. Released when the block ends
        or, if the process dies, when the server drops its connection."""
        key = lock_key(source)
        deadline = time.monotonic() + wait_s
        while True:
            got = self.conn.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()
            if got and got[0]:
                break
            if time.monotonic() >= deadline:
                raise RunLockedError(self._locked_message(source))
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        self._locks[source] = key
        try:
            yield
        finally:
            self._locks.pop(source, None)
            # a dead connection has released it already
            with contextlib.suppress(Exception):
                self.conn.execute("SELECT pg_advisory_unlock(?)", (key,))

    def _locked_message(self, source: str) -> str:
        row = self.conn.execute(
            "SELECT id, host, pid, started_at FROM runs WHERE source = ? AND status = 'running' "
            "ORDER BY id DESC LIMIT 1", (source,)).fetchone()
        holder = (f" (run {row[0]} on host {row[1]}, pid {row[2]}, started {row[3]})"
                  if row else "")
        return (f"history store {self.path}: another run of source {source!r} is in "
                f"progress{holder}; not starting a second one. It ends on its own; if its "
                "machine died, PostgreSQL frees the lock when the connection drops")
