"""A history written at schema version 1 (findings one row each in ``violations``) opens with
this version, is migrated to version 2 (one Parquet blob per run + the fingerprint table), and
reads back the same findings, value for value, on both backends."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from auditor.history import HistoryStore
from auditor.history.frames import snapshot_to_blobs
from auditor.history.pg_schema import PG_MIGRATIONS
from auditor.history.postgres import PostgresHistoryStore
from auditor.history.schema import MIGRATIONS, _statements
from connectors.demo import generate_demo_org

COLS = ["fingerprint", "rule_code", "rule_name", "severity", "opportunity_id",
        "opportunity_name", "owner_id", "account_name", "stage", "amount", "url", "message"]
#: run 1's findings as a version-1 store holds them (written out of order on purpose)
RUN1 = [
    ("b1c2d3e4f5a60718", "ST04", "Stale deal", "warning", "006B", "Renewal – Müller GmbH",
     "005X", "Müller GmbH", "negotiation", 125000.5, "https://crm.example/006B",
     "no activity for 45 days"),
    ("0a1b2c3d4e5f6071", "CL01", "Lost without reason", "error", "006A", 'Deal "Alpha"',
     None, None, "closed_lost", None, None, "lost without a loss reason"),
    ("ffeeddccbbaa9988", "CL01", "Lost without reason", "error", "006C", "O'Brien & Co\n2",
     "005Y", "O'Brien & Co", "closed_lost", 0.1, "https://crm.example/006C",
     "lost without a loss reason; 😀 unicode"),
]
SNAP = generate_demo_org(200, seed=5).snapshot
#: run 3's (run 2 failed and stored none)
RUN3 = [("0a1b2c3d4e5f6071", *RUN1[1][1:]), ("1234567890abcdef", "FU01", "No next step",
        "warning", "006D", "Delta", "005X", "Delta Inc", "proposal", -3.0, None, "x")]


def _expected(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """What version 1's ``violations(run_id)`` returned: by rule code, then record id."""
    df = pd.DataFrame(sorted(rows, key=lambda r: (r[1], r[4])), columns=COLS)
    df["amount"] = pd.to_numeric(df["amount"]).astype("Float64")
    for c in COLS:
        if c != "amount":
            df[c] = df[c].astype("string[pyarrow]")
    return df


def _fill_v1(execute: Any) -> None:
    """Three runs of 'demo' (success, failed, success) with their findings, as version 1."""
    for rid, status in ((1, "success"), (2, "failed"), (3, "success")):
        execute("INSERT INTO runs (id, source, status, started_at, violations) "
                "VALUES (?, 'demo', ?, ?, ?)",
                (rid, status, f"2026-06-1{rid}T02:00:00+00:00", {1: 3, 2: None, 3: 2}[rid]))
    marks = ", ".join(["?"] * (len(COLS) + 1))
    for rid, rows in ((1, RUN1), (3, RUN3)):
        for row in rows:
            execute(f"INSERT INTO violations (run_id, {', '.join(COLS)}) VALUES ({marks})",
                    (rid, *row))
    b = snapshot_to_blobs(SNAP)
    execute("INSERT INTO snapshots (source, run_id, pull_started_at, format, meta, "
            "opportunities, stage_history, owners) VALUES ('demo', 3, ?, ?, ?, ?, ?, ?)",
            ("2026-06-13T02:00:00+00:00", b["format"], b["meta"], b["opportunities"],
             b["stage_history"], b["owners"]))


def _check(store: HistoryStore) -> None:
    pd.testing.assert_frame_equal(store.violations(1), _expected(RUN1))
    pd.testing.assert_frame_equal(store.violations(3), _expected(RUN3))
    assert store.violations(2).empty
    assert sorted(store.fingerprints(1)) == sorted(r[0] for r in RUN1)
    some = store.violations(1, ["ffeeddccbbaa9988", "not-stored"])
    pd.testing.assert_frame_equal(some, _expected(RUN1[2:]))
    rows = store.conn.execute(
        "SELECT run_id, fingerprint FROM findings ORDER BY run_id, fingerprint").fetchall()
    assert [tuple(r) for r in rows] == sorted(
        [(1, r[0]) for r in RUN1] + [(3, r[0]) for r in RUN3])
    assert [r["id"] for r in store.runs()] == [3, 2, 1]
    assert store.last_successful_run("demo")["violations"] == 2
    stored = store.last_snapshot("demo")  # still in the row's blobs, as version 1 wrote it
    assert stored.run_id == 3
    for name in ("opportunities", "stage_history", "owners"):
        pd.testing.assert_frame_equal(getattr(stored.snapshot, name), getattr(SNAP, name))


def _v1_sqlite(path: Path) -> Path:
    """A history file as version 1 wrote it, with the hand-written contents of ``_fill_v1``."""
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in _statements(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    _fill_v1(conn.execute)
    conn.close()
    return path


def test_a_version_1_sqlite_history_is_migrated_and_reads_the_same(tmp_path: Path) -> None:
    path = _v1_sqlite(tmp_path / "h.sqlite")
    with HistoryStore(path) as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == 2
        tables = {r[0] for r in store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "violations" not in tables
        _check(store)
        assert store.integrity_check() == "ok"
    with HistoryStore(path) as store:  # opening again migrates nothing more
        _check(store)
        # and deleting a run deletes its findings with it
        store.conn.execute("PRAGMA foreign_keys = ON")
        store.conn.execute("DELETE FROM runs WHERE id = 1")
        assert store.violations(1).empty
        assert store.conn.execute("SELECT count(*) FROM findings").fetchone()[0] == 2


def test_a_version_1_postgresql_history_is_migrated_and_reads_the_same(pg) -> None:
    import psycopg

    db = pg.create_database("h_v1_migration")
    with psycopg.connect(host="127.0.0.1", port=pg.port, user=pg.user, password=pg.password,
                         dbname=db, autocommit=True) as raw:
        raw.execute(PG_MIGRATIONS[0])
        raw.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        raw.execute("INSERT INTO schema_version (version) VALUES (1)")
        _fill_v1(lambda sql, args: raw.execute(sql.replace("?", "%s"), args))
    with PostgresHistoryStore(pg.url(db), password_env="PGPW", env={"PGPW": pg.password}) as s:
        assert s.schema_version() == 2
        assert s.conn.execute("SELECT to_regclass('violations')").fetchone()[0] is None
        _check(s)
        assert s.integrity_check() == "ok"


def test_a_failing_migration_leaves_the_version_1_file_as_it_was(tmp_path, monkeypatch) -> None:
    """The conversion runs in the migration's one transaction: a failure midway (here: the
    Parquet writer) rolls everything back; the next open migrates from version 1 again."""
    import auditor.history.schema as schema

    path = _v1_sqlite(tmp_path / "h.sqlite")

    def broken(table: Any) -> bytes:
        raise OSError("simulated failure while converting")

    monkeypatch.setattr(schema, "to_parquet", broken)
    with pytest.raises(OSError, match="simulated"):
        HistoryStore(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM violations").fetchone()[0] == 5
    conn.close()
    monkeypatch.undo()
    with HistoryStore(path) as store:
        _check(store)
