"""The history store's SQLite schema and its migrations (``PRAGMA user_version``).

Each migration moves the schema from version ``i`` to ``i + 1``: a SQL script, or a sequence of
steps, each a SQL script or a function of the connection (for data SQL cannot convert, like
findings rows into a Parquet blob). They run in order inside one transaction when a store is
opened. Never edit a released migration: append a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from auditor.history.findings import (
    FINDINGS_FORMAT,
    STORED_VIOLATION_COLUMNS,
    table_from_rows,
    to_parquet,
)

#: one step of a migration: SQL, or a function given the connection (``?`` placeholders)
Step = str | Callable[[Any], None]


def findings_to_blobs(conn: Any) -> None:
    """Schema 1 → 2: each run's rows of the ``violations`` table become that run's Parquet blob
    (values as they were stored; the fingerprints were copied to ``findings`` by SQL)."""
    cols = ", ".join(STORED_VIOLATION_COLUMNS)
    run_ids = [r[0] for r in conn.execute(
        "SELECT DISTINCT run_id FROM violations ORDER BY run_id").fetchall()]
    for run_id in run_ids:
        rows = conn.execute(f"SELECT {cols} FROM violations WHERE run_id = ?", (run_id,))
        table = table_from_rows(rows.fetchall())
        conn.execute(
            "INSERT INTO run_findings (run_id, format, row_count, data) VALUES (?, ?, ?, ?)",
            (run_id, FINDINGS_FORMAT, table.num_rows, to_parquet(table)),
        )


MIGRATIONS: list[str | Sequence[Step]] = [
    # 0 → 1: runs, their violations and metrics, the last snapshot per source, derived history
    """
    CREATE TABLE runs (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        source        TEXT NOT NULL,
        source_type   TEXT,
        status        TEXT NOT NULL
                      CHECK (status IN ('running', 'success', 'failed', 'interrupted')),
        started_at    TEXT NOT NULL,          -- ISO 8601, UTC
        finished_at   TEXT,
        as_of         TEXT,                   -- the audit day, YYYY-MM-DD
        incremental   INTEGER NOT NULL DEFAULT 0,
        records       INTEGER,
        violations    INTEGER,
        suppressed    INTEGER,
        score         REAL,
        duration_s    REAL,
        api_calls     INTEGER,
        counts        TEXT,                   -- JSON: by rule, by severity, rejected rows, diff
        error         TEXT,                   -- redacted message of a failed run
        pid           INTEGER,
        host          TEXT,
        config_origin TEXT
    );
    CREATE INDEX runs_by_source ON runs (source, status, id);

    CREATE TABLE violations (
        run_id           INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        fingerprint      TEXT NOT NULL,
        rule_code        TEXT NOT NULL,
        rule_name        TEXT,
        severity         TEXT,
        opportunity_id   TEXT,
        opportunity_name TEXT,
        owner_id         TEXT,
        account_name     TEXT,
        stage            TEXT,
        amount           REAL,
        url              TEXT,
        message          TEXT,
        PRIMARY KEY (run_id, fingerprint)
    ) WITHOUT ROWID;

    CREATE TABLE metrics (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        name   TEXT NOT NULL,
        value  TEXT NOT NULL,                 -- JSON
        PRIMARY KEY (run_id, name)
    ) WITHOUT ROWID;

    -- the last successful pull of each source (base for incremental pulls and derived history)
    CREATE TABLE snapshots (
        source          TEXT PRIMARY KEY,
        run_id          INTEGER REFERENCES runs (id) ON DELETE SET NULL,
        pull_started_at TEXT NOT NULL,        -- the next incremental pull asks for changes since
        format          TEXT NOT NULL,        -- 'parquet-zstd/1'
        meta            TEXT NOT NULL,        -- JSON: the SnapshotMeta facts needed to rebuild it
        opportunities   BLOB NOT NULL,
        stage_history   BLOB NOT NULL,
        owners          BLOB NOT NULL
    );

    -- stage history observed between runs, for sources that supply none (CSV)
    CREATE TABLE derived_history (
        source         TEXT NOT NULL,
        opportunity_id TEXT NOT NULL,
        stage          TEXT NOT NULL,
        source_stage   TEXT,
        entered_at     TEXT NOT NULL,         -- ISO 8601, UTC
        basis          TEXT NOT NULL CHECK (basis IN ('first_seen', 'created', 'change')),
        run_id         INTEGER REFERENCES runs (id) ON DELETE SET NULL
    );
    CREATE INDEX derived_history_by_source ON derived_history (source, opportunity_id);
    """,
    # 1 → 2: a run's findings as one Parquet blob, their fingerprints in an indexed table
    (
        """
    -- one row per successful run: its findings (auditor/history/findings.py)
    CREATE TABLE run_findings (
        run_id    INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
        format    TEXT NOT NULL,              -- 'parquet-zstd/1'
        row_count INTEGER NOT NULL,
        data      BLOB NOT NULL               -- Parquet, zstd-compressed inside
    );

    -- the fingerprints of each run's findings: a diff, or SQL, without decoding the blob
    CREATE TABLE findings (
        run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        fingerprint TEXT NOT NULL,
        PRIMARY KEY (run_id, fingerprint)
    ) WITHOUT ROWID;
    INSERT INTO findings (run_id, fingerprint) SELECT run_id, fingerprint FROM violations;

    -- a snapshot may live in a file beside the store (SQLite: kept out of the write-ahead log)
    CREATE TABLE snapshots_2 (
        source          TEXT PRIMARY KEY,
        run_id          INTEGER REFERENCES runs (id) ON DELETE SET NULL,
        pull_started_at TEXT NOT NULL,
        format          TEXT NOT NULL,        -- 'parquet-zstd/1'
        meta            TEXT NOT NULL,
        file            TEXT,                 -- NULL: the frames are in the three blobs below
        file_layout     TEXT,                 -- JSON: the frames' byte sizes in it, its CRC-32
        opportunities   BLOB,
        stage_history   BLOB,
        owners          BLOB
    );
    INSERT INTO snapshots_2 (source, run_id, pull_started_at, format, meta, opportunities,
                             stage_history, owners)
        SELECT source, run_id, pull_started_at, format, meta, opportunities, stage_history,
               owners FROM snapshots;
    DROP TABLE snapshots;
    ALTER TABLE snapshots_2 RENAME TO snapshots;
    """,
        findings_to_blobs,
        "DROP TABLE violations;",
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`; returns the version found before.

    The connection must be in autocommit mode (``isolation_level=None``): the migrations and the
    version bump commit together or not at all.
    """
    found = schema_version(conn)
    if found >= SCHEMA_VERSION:
        return found
    conn.execute("BEGIN IMMEDIATE")
    try:
        # re-read under the write lock: another process may have migrated meanwhile
        current = schema_version(conn)
        for version in range(current, SCHEMA_VERSION):
            for step in steps(MIGRATIONS[version]):
                if callable(step):
                    step(conn)
                    continue
                for statement in _statements(step):
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


def steps(migration: str | Sequence[Step]) -> list[Step]:
    return [migration] if isinstance(migration, str) else list(migration)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit behind our back)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        code = line.split("--", 1)[0]
        buf += code
        if code.rstrip().endswith(";") and sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
