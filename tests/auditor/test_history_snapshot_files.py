"""The stored snapshot lives in its own file beside the SQLite store (written once, not through
the write-ahead log): named by the row that stores it, replaced only by a commit, never lost by
a failed or killed run, and checked when read."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from auditor.history import HistoryError, HistoryStore
from auditor.history.findings import findings_table
from auditor.history.store import STORED_VIOLATION_COLUMNS
from connectors.demo import generate_demo_org


@pytest.fixture(scope="module")
def snaps():
    return [generate_demo_org(300, seed=s).snapshot for s in (1, 2)]


def _none() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype="string") for c in STORED_VIOLATION_COLUMNS})


def _commit(store: HistoryStore, snap, **kw) -> int:
    rid = store.begin_run("demo", "demo")
    store.commit_run(rid, summary={}, violations=_none(), metrics={}, snapshot=snap, **kw)
    return rid


def _files(path: Path) -> list[str]:
    folder = path.with_name(path.name + ".snapshots")
    return sorted(p.name for p in folder.iterdir())


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.opportunities, b.opportunities)
    pd.testing.assert_frame_equal(a.stage_history, b.stage_history)
    pd.testing.assert_frame_equal(a.owners, b.owners)


def test_the_snapshot_is_a_file_named_by_its_row_and_the_replaced_one_is_deleted(
        tmp_path, snaps) -> None:
    path = tmp_path / "h.sqlite"
    with HistoryStore(path) as store:
        r1 = _commit(store, snaps[0])
        (f1,) = _files(path)
        r2 = _commit(store, snaps[1])
        row = store.conn.execute(
            "SELECT run_id, file, opportunities, stage_history, owners FROM snapshots").fetchone()
        assert row == (r2, _files(path)[0], None, None, None)  # no frame bytes in the database
        assert _files(path) != [f1] and f1.endswith(f"-{r1}.parquet-frames")
        back = store.last_snapshot("demo")
    assert back.run_id == r2
    _same(back.snapshot, snaps[1])
    assert (path.parent / "h.sqlite.snapshots").stat().st_mode & 0o777 == 0o700
    assert (path.parent / "h.sqlite.snapshots" / _files(path)[0]).stat().st_mode & 0o777 == 0o600


def test_a_commit_that_fails_keeps_the_stored_snapshot_and_its_file(tmp_path, snaps,
                                                                      monkeypatch) -> None:
    path = tmp_path / "h.sqlite"
    with HistoryStore(path) as store:
        r1 = _commit(store, snaps[0])
        before = _files(path)

        def broken(*args: object) -> None:
            raise OSError("simulated failure inside the transaction")

        monkeypatch.setattr(store, "_insert_fingerprints", broken)
        with pytest.raises(OSError, match="simulated"):
            _commit(store, snaps[1])
        monkeypatch.undo()
        assert _files(path) == before  # the new file went with the rolled-back transaction
        back = store.last_snapshot("demo")
        assert back.run_id == r1
        _same(back.snapshot, snaps[0])


def test_a_prepared_snapshot_of_a_run_that_then_fails_is_deleted(tmp_path, snaps) -> None:
    path = tmp_path / "h.sqlite"
    with HistoryStore(path) as store:
        _commit(store, snaps[0])
        kept = _files(path)
        rid = store.begin_run("demo", "demo")
        # as run.py does while the reports render
        store.prepare(rid, "demo", findings_table(_none()), snaps[1])
        assert len(_files(path)) == 2
        store.fail_run(rid, RuntimeError("reports failed"))
        assert _files(path) == kept


def test_a_file_left_by_a_killed_run_is_deleted_by_the_next_commit(tmp_path, snaps) -> None:
    path = tmp_path / "h.sqlite"
    with HistoryStore(path) as store:
        _commit(store, snaps[0])
        killed = store.begin_run("demo", "demo")
        store.prepare(killed, "demo", findings_table(_none()), snaps[1])
        # a run of another source in progress keeps its file
        other = store.begin_run("other", "demo")
        store.prepare(other, "other", findings_table(_none()), snaps[1])
        store.conn.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (killed,))
        r3 = _commit(store, snaps[1])
        names = _files(path)
        assert len(names) == 2
        assert any(n.endswith(f"-{r3}.parquet-frames") for n in names)
        assert any(n.endswith(f"-{other}.parquet-frames") for n in names)


def test_a_missing_or_damaged_snapshot_file_is_a_clear_error(tmp_path, snaps) -> None:
    path = tmp_path / "h.sqlite"
    with HistoryStore(path) as store:
        _commit(store, snaps[0])
        (name,) = _files(path)
        file = path.parent / "h.sqlite.snapshots" / name
        data = file.read_bytes()
        file.write_bytes(data[:-10] + b"0123456789")
        with pytest.raises(HistoryError, match=r"stored snapshot of 'demo' is damaged .*--full"):
            store.last_snapshot("demo")
        file.unlink()
        with pytest.raises(HistoryError, match=r"stored snapshot of 'demo' is missing .*--full"):
            store.last_snapshot("demo")


def test_forget_source_deletes_its_snapshot_file(tmp_path, snaps) -> None:
    path = tmp_path / "h.sqlite"
    with HistoryStore(path) as store:
        _commit(store, snaps[0])
        assert store.forget_source("demo") == 1
        assert _files(path) == []
