"""History store, run-to-run diff and trend, failure bookkeeping (issue 7, items 1, 2, 6)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import date

import pandas as pd
import pytest

from auditor.app.run import execute
from auditor.errors import ConnectorError
from auditor.history import HistoryError, HistoryStore, history_path
from auditor.history.schema import SCHEMA_VERSION
from auditor.snapshot import Snapshot
from connectors.demo import generate_demo_org
from reports.render import report_context
from tests.auditor.conftest import AS_OF, make_config

DAY = date.fromisoformat(AS_OF)


def _changed(snap: Snapshot, fix_loss: list[str], drop_next: list[str]) -> Snapshot:
    """A copy where the ``fix_loss`` deals get a loss reason and ``drop_next`` lose next steps."""
    opp = snap.opportunities.copy()
    opp.loc[opp["id"].isin(fix_loss), "loss_reason"] = "Price"
    drop = opp["id"].isin(drop_next)
    opp.loc[drop, "next_step"] = pd.NA
    opp.loc[drop, "next_step_due"] = pd.NaT
    return Snapshot(opp, snap.stage_history, snap.owners, replace(snap.meta)).validate()


@pytest.fixture
def org():
    return generate_demo_org(600, seed=3, as_of=DAY)


def test_two_runs_over_changing_demo_data_count_new_and_resolved_exactly(tmp_path, scripted, org):
    snap1 = org.snapshot
    opp = snap1.opportunities
    # lost within the 90-day fix window: their CL01 findings are to-dos that can be resolved
    recent = set(opp.loc[(pd.Timestamp(DAY) - opp["close_date"]).dt.days <= 90, "id"])
    fix = sorted(org.ground_truth["CL01"] & recent)[:5]
    clean_open = opp[
        ~opp["is_closed"].astype(bool)
        & opp["stage"].isin(["discovery", "proposal"])
        & opp["next_step"].notna()
        & ~opp["id"].isin(org.ground_truth["FU01"])
    ]["id"]
    broken = sorted(clean_open)[:7]
    assert len(fix) == 5 and len(broken) == 7
    scripted.script = [snap1, _changed(snap1, fix, broken)]
    cfg = make_config(tmp_path, report={"formats": ["md", "json"]})

    run1 = execute(cfg, out_dir=tmp_path / "out")
    n1 = len(run1.result.violations)
    assert run1.history is None  # first run of the source: nothing to compare with

    run2 = execute(cfg, out_dir=tmp_path / "out")
    h = run2.history.to_dict()
    assert h["previous_run"]["id"] == run1.run_id
    assert h["previous_run"]["score"] == run1.score
    assert (h["new"], h["resolved"], h["persisting"]) == (7, 5, n1 - 5)
    assert sorted(i["opportunity_id"] for i in h["new_items"]) == broken
    assert {i["rule_code"] for i in h["new_items"]} == {"FU01"}
    assert sorted(i["opportunity_id"] for i in h["resolved_items"]) == fix
    assert {i["rule_code"] for i in h["resolved_items"]} == {"CL01"}
    assert [(t["run_id"], t["violations"]) for t in h["trend"]] == [
        (run1.run_id, n1),
        (run2.run_id, n1 - 5 + 7),
    ]
    assert h["trend"][-1]["score"] == run2.score
    view = report_context(run2)["history"]
    assert (view["new"], view["resolved"], view["persisting"]) == (7, 5, n1 - 5)
    md = (tmp_path / "out" / "report.md").read_text()
    assert f"Since the last run: **7** new, **5** resolved, {n1 - 5:,} still open." in md
    assert md.count("\n- ") >= 12  # the 7 new and 5 resolved deals are listed

    with HistoryStore(tmp_path / "history.sqlite") as store:
        runs = store.runs()
        assert [(r["id"], r["status"]) for r in runs] == [
            (run2.run_id, "success"),
            (run1.run_id, "success"),
        ]
        assert runs[0]["counts"]["new"] == 7 and runs[0]["counts"]["resolved"] == 5
        assert runs[0]["violations"] == n1 + 2 and runs[0]["records"] == 600
        stored = store.violations(run2.run_id)
        assert set(stored["fingerprint"]) == set(run2.result.violations["fingerprint"].astype(str))
        assert store.metrics(run2.run_id)["hygiene_score"]["org"] == run2.score


def test_trend_keeps_the_last_n_runs_oldest_first(tmp_path, scripted, org):
    scripted.script = [org.snapshot] * 4
    cfg = make_config(tmp_path)  # trend_runs = 3
    ids = [execute(cfg, out_dir=tmp_path / "out").run_id for _ in range(3)]
    last = execute(cfg, out_dir=tmp_path / "out")
    assert [t["run_id"] for t in last.history.to_dict()["trend"]] == [ids[1], ids[2], last.run_id]


def test_failed_run_is_recorded_and_the_next_run_diffs_against_the_last_success(
    tmp_path, scripted, org
):
    scripted.script = [org.snapshot, ConnectorError("Salesforce: HTTP 503 on query"), org.snapshot]
    cfg = make_config(tmp_path)
    ok = execute(cfg, out_dir=tmp_path / "out")
    with pytest.raises(ConnectorError):
        execute(cfg, out_dir=tmp_path / "out")
    third = execute(cfg, out_dir=tmp_path / "out")
    assert third.history.to_dict()["previous_run"]["id"] == ok.run_id
    assert third.history.to_dict()["new"] == 0 and third.history.to_dict()["resolved"] == 0
    with HistoryStore(tmp_path / "history.sqlite") as store:
        failed = store.runs()[1]
        assert failed["status"] == "failed"
        assert failed["error"] == "Salesforce: HTTP 503 on query"
        assert failed["violations"] is None
        assert store.violations(failed["id"]).empty


def test_history_disabled_writes_no_store(tmp_path, scripted, org):
    scripted.script = [org.snapshot]
    cfg = make_config(tmp_path, history={"enabled": False})
    run = execute(cfg, out_dir=tmp_path / "out")
    assert run.history is None and run.run_id is None
    assert not (tmp_path / "history.sqlite").exists()
    assert history_path(cfg) is None


def test_demo_run_without_config_keeps_history_beside_the_output_folder(tmp_path, monkeypatch):
    """Each run replaces the output folder whole (#13), so the demo history lives beside it."""
    from auditor.config import default_config

    monkeypatch.chdir(tmp_path)
    cfg = default_config()
    cfg.source["size"] = 200
    run = execute(cfg, as_of=DAY)
    assert history_path(cfg).resolve() == tmp_path / "audit-report.history.sqlite"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "audit-report",
        "audit-report.history.sqlite",
        "audit-report.history.sqlite.lock",
        "audit-report.history.sqlite.snapshots",
    ]
    with HistoryStore(tmp_path / "audit-report.history.sqlite") as store:
        assert store.runs()[0]["id"] == run.run_id


def test_a_v01_demo_history_inside_the_output_folder_is_moved_beside_it(tmp_path, monkeypatch):
    from auditor.config import default_config

    monkeypatch.chdir(tmp_path)
    cfg = default_config()
    cfg.source["size"] = 200
    first = execute(cfg, as_of=DAY)
    # the v0.1 layout: history.sqlite inside audit-report/
    (tmp_path / "audit-report.history.sqlite").rename(tmp_path / "audit-report" / "history.sqlite")
    second = execute(cfg, as_of=DAY)
    assert second.history.previous_run.id == first.run_id
    assert not (tmp_path / "audit-report" / "history.sqlite").exists()


def test_config_history_path_is_relative_to_the_config_file(tmp_path):
    cfg = make_config(tmp_path, history={"path": "state/h.sqlite"})
    assert history_path(cfg) == tmp_path / "state" / "h.sqlite"


def test_new_store_is_migrated_to_the_current_version_in_wal_mode(tmp_path):
    with HistoryStore(tmp_path / "h.sqlite") as store:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {
            r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert tables == {"runs", "run_findings", "findings", "metrics", "snapshots",
                          "derived_history", "sqlite_sequence"}


def test_store_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "h.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(HistoryError, match=r"schema version 99, newer than .* \(2\)"):
        HistoryStore(path)


def test_a_file_that_is_not_sqlite_is_a_clear_error(tmp_path):
    path = tmp_path / "h.sqlite"
    path.write_text("this is not a database, just some text " * 100)
    with pytest.raises(HistoryError, match="is not a readable SQLite history file"):
        HistoryStore(path)


def test_running_row_of_a_dead_process_is_marked_interrupted(tmp_path):
    path = tmp_path / "h.sqlite"
    code = (
        "import os, sys; from auditor.history import HistoryStore; "
        "s = HistoryStore(sys.argv[1]); print(s.begin_run('demo', 'demo')); os._exit(0)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=os.getcwd(),
    )
    dead = int(proc.stdout)
    with HistoryStore(path) as store:
        mine = store.begin_run("demo", "demo")  # running in this process: left alone
    with HistoryStore(path) as store:
        runs = {r["id"]: r for r in store.runs()}
        assert {i: r["status"] for i, r in runs.items()} == {dead: "interrupted", mine: "running"}
        assert runs[dead]["error"] == "the process running it ended before it finished"


def test_stored_snapshot_round_trips_with_dtypes(tmp_path, org):
    snap = org.snapshot
    with HistoryStore(tmp_path / "h.sqlite") as store:
        rid = store.begin_run("demo", "demo")
        store.commit_run(rid, summary={}, violations=_no_violations(), metrics={}, snapshot=snap)
        back = store.last_snapshot("demo")
    assert back.run_id == rid
    pd.testing.assert_frame_equal(back.snapshot.opportunities, snap.opportunities)
    pd.testing.assert_frame_equal(back.snapshot.stage_history, snap.stage_history)
    pd.testing.assert_frame_equal(back.snapshot.owners, snap.owners)
    assert back.snapshot.meta.provided_fields == snap.meta.provided_fields
    assert back.snapshot.meta.has_stage_history is True


def test_forget_source_deletes_everything_of_that_source(tmp_path, scripted, org):
    scripted.script = [org.snapshot]
    execute(make_config(tmp_path), out_dir=tmp_path / "out")
    with HistoryStore(tmp_path / "history.sqlite") as store:
        assert store.forget_source("demo") == 1
        assert store.runs() == []
        assert store.last_snapshot("demo") is None
        for table in ("run_findings", "findings", "metrics"):
            assert store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0


def _no_violations() -> pd.DataFrame:
    from auditor.history.store import STORED_VIOLATION_COLUMNS

    return pd.DataFrame({c: pd.Series(dtype="string") for c in STORED_VIOLATION_COLUMNS})


def test_running_row_from_another_host_is_interrupted_only_when_old(tmp_path):
    path = tmp_path / "h.sqlite"
    with HistoryStore(path) as store:
        old = store.begin_run("demo", "demo")
        new = store.begin_run("demo", "demo")
        store.conn.execute(
            "UPDATE runs SET host = 'pod-1', started_at = '2026-01-01T02:30:00+00:00' WHERE id = ?",
            (old,),
        )
        store.conn.execute("UPDATE runs SET host = 'pod-2' WHERE id = ?", (new,))
        from auditor.history.store import _active_runs

        _active_runs.difference_update({store._key(old), store._key(new)})  # "other processes"
    with HistoryStore(path) as store:
        assert {r["id"]: r["status"] for r in store.runs()} == {
            old: "interrupted",
            new: "running",
        }


def test_store_locked_by_another_writer_is_a_clear_error(tmp_path):
    path = tmp_path / "h.sqlite"
    HistoryStore(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with (
            HistoryStore(path, timeout_s=0.1) as store,
            pytest.raises(HistoryError) as err,
        ):
            store.begin_run("demo", "demo")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert str(err.value) == (
        f"history store {path}: recording the run start failed: database is locked"
    )


def test_findings_are_fetched_by_fingerprint_beyond_the_bound_variable_limit(tmp_path):
    from auditor.history.store import STORED_VIOLATION_COLUMNS

    n = 1200
    v = pd.DataFrame(
        {
            c: pd.Series([f"{c}-{i}" for i in range(n)], dtype="string")
            for c in STORED_VIOLATION_COLUMNS
        }
    )
    v["amount"] = pd.Series(range(n), dtype="Float64")
    with HistoryStore(tmp_path / "h.sqlite") as store:
        rid = store.begin_run("demo", "demo")
        store.commit_run(rid, summary={}, violations=v, metrics={})
        assert len(store.fingerprints(rid)) == n
        wanted = [f"fingerprint-{i}" for i in range(1100)]  # three chunks of <= 500
        got = store.violations(rid, wanted)
    assert sorted(got["fingerprint"]) == sorted(wanted)
    assert got.set_index("fingerprint").loc["fingerprint-7", "amount"] == 7
