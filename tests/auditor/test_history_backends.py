"""The history store on both backends: SQLite (the default) and a real PostgreSQL server.

Every test here runs once per backend with the same hand-written expectations, so "identical on
both" is checked value by value; the PostgreSQL-only parts (advisory run lock across processes,
a killed holder, password from the environment) follow.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from auditor.app.cli import main
from auditor.app.run import execute
from auditor.config import AuditConfig
from auditor.errors import ConnectorError
from auditor.history import HistoryStore, open_history
from auditor.history.pg_schema import PG_MIGRATIONS, PG_ONLY_COLUMNS
from auditor.history.postgres import PostgresHistoryStore
from auditor.history.schema import MIGRATIONS
from connectors.demo import generate_demo_org
from tests.auditor.conftest import AS_OF, make_config

DAY = date.fromisoformat(AS_OF)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``history`` config keys for a fresh store on the backend."""
    if request.param == "sqlite":
        return {"path": "history.sqlite"}
    pg = request.getfixturevalue("pg")
    db = pg.create_database(f"h_{abs(hash(str(tmp_path))) % 10**9}")
    monkeypatch.setenv("CRM_AUDIT_TEST_PG_PASSWORD", pg.password)
    return {"url": pg.url(db), "password_env": "CRM_AUDIT_TEST_PG_PASSWORD"}


@pytest.fixture
def org():
    return generate_demo_org(600, seed=3, as_of=DAY)


def _cfg(tmp_path: Path, backend: dict[str, Any], **sections: Any) -> AuditConfig:
    return make_config(tmp_path, history=backend, **sections)


def test_two_runs_diff_trend_and_stored_rows(tmp_path, backend, scripted, org) -> None:
    snap = org.snapshot
    opp = snap.opportunities.copy()
    # lost within the 90-day fix window: their CL01 findings are to-dos that can be resolved
    recent = set(opp.loc[(pd.Timestamp(DAY) - opp["close_date"]).dt.days <= 90, "id"])
    fixed = sorted(org.ground_truth["CL01"] & recent)[:4]
    assert len(fixed) == 4
    opp.loc[opp["id"].isin(fixed), "loss_reason"] = "Price"
    from auditor.snapshot import Snapshot

    snap2 = Snapshot(opp, snap.stage_history, snap.owners, snap.meta).validate()
    scripted.script = [snap, snap2, snap2]
    cfg = _cfg(tmp_path, backend)
    run1 = execute(cfg, out_dir=tmp_path / "out")
    run2 = execute(cfg, out_dir=tmp_path / "out")
    n1 = len(run1.result.violations)
    h = run2.history.to_dict()
    assert (h["new"], h["resolved"], h["persisting"]) == (0, 4, n1 - 4)
    assert sorted(i["opportunity_id"] for i in h["resolved_items"]) == fixed
    run3 = execute(cfg, out_dir=tmp_path / "out")
    assert [t["run_id"] for t in run3.history.to_dict()["trend"]] == [run1.run_id, run2.run_id,
                                                             run3.run_id]
    with open_history(cfg) as store:
        runs = store.runs()
        assert [(r["id"], r["status"], r["records"], r["violations"]) for r in runs] == [
            (3, "success", 600, n1 - 4), (2, "success", 600, n1 - 4), (1, "success", 600, n1)]
        assert runs[1]["counts"]["resolved"] == 4 and runs[1]["incremental"] is False
        stored = store.violations(run2.run_id)
        exp = run2.result.violations.sort_values(["rule_code", "opportunity_id"])
        assert stored["fingerprint"].tolist() == exp["fingerprint"].astype(str).tolist()
        assert stored["amount"].sum() == pytest.approx(float(exp["amount"].sum()))
        few = stored["fingerprint"].tolist()[:3]
        assert sorted(store.violations(run2.run_id, few)["fingerprint"]) == sorted(few)
        assert len(store.fingerprints(run1.run_id)) == n1
        assert store.metrics(run2.run_id)["hygiene_score"]["org"] == run2.score
        back = store.last_snapshot("demo")
        assert back.run_id == run3.run_id
        pd.testing.assert_frame_equal(back.snapshot.opportunities, snap2.opportunities)
        assert store.integrity_check() == "ok"


def test_failed_run_then_diff_against_last_success_then_forget(tmp_path, backend, scripted,
                                                               org) -> None:
    scripted.script = [org.snapshot, ConnectorError("HTTP 503 from the CRM"), org.snapshot]
    cfg = _cfg(tmp_path, backend)
    first = execute(cfg, out_dir=tmp_path / "out")
    with pytest.raises(ConnectorError):
        execute(cfg, out_dir=tmp_path / "out")
    third = execute(cfg, out_dir=tmp_path / "out")
    assert third.history.to_dict()["previous_run"]["id"] == first.run_id
    with open_history(cfg) as store:
        assert [(r["id"], r["status"]) for r in store.runs()] == [
            (3, "success"), (2, "failed"), (1, "success")]
        assert store.runs()[1]["error"] == "HTTP 503 from the CRM"
        assert store.forget_source("demo") == 3
        assert store.runs() == [] and store.last_snapshot("demo") is None


def test_derived_history_keeps_insertion_order(tmp_path, backend) -> None:
    cfg = _cfg(tmp_path, backend)
    rows = pd.DataFrame({
        "opportunity_id": ["b", "a", "b"], "stage": ["discovery", "proposal", "proposal"],
        "source_stage": ["Disc", None, "Prop"],
        "entered_at": pd.to_datetime(["2026-06-02", "2026-06-01", "2026-06-03"], utc=True),
        "basis": ["first_seen", "created", "change"]})
    with open_history(cfg) as store:
        rid = store.begin_run("csv", "csv")
        store.commit_run(rid, summary={"records": 2}, violations=_no_findings(),
                         metrics={}, derived_rows=rows)
        got = store.derived_history("csv")
    assert got["opportunity_id"].tolist() == ["b", "a", "b"]
    assert got["source_stage"].fillna("-").tolist() == ["Disc", "-", "Prop"]
    assert got["entered_at"].tolist() == rows["entered_at"].tolist()


def _no_findings() -> pd.DataFrame:
    from auditor.results import VIOLATION_COLUMNS

    return pd.DataFrame({c: pd.Series(dtype="string") for c in VIOLATION_COLUMNS})


def test_crm_audit_history_prints_the_same_on_both_backends(tmp_path, backend) -> None:
    cfg = tmp_path / "audit.toml"
    hist = "\n".join(f"{k} = {json.dumps(v)}" for k, v in backend.items())
    cfg.write_text('[audit]\nas_of = 2026-06-15\n[source]\ntype = "demo"\nsize = 200\n'
                   f'[history]\n{hist}\n[report]\nformats = ["json"]\n')
    runner = CliRunner()
    for _ in range(2):
        res = runner.invoke(main, ["run", "-c", str(cfg), "-o", str(tmp_path / "out")])
        assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["history", "-c", str(cfg)])
    assert res.exit_code == 0, res.output
    rows = [line.split() for line in res.output.splitlines()[1:]]
    # run, status, source, as-of, records, findings, new, gone (times and scores vary by run)
    assert [r[:3] + r[5:7] + r[8:10] for r in rows] == [
        ["2", "success", "demo", "2026-06-15", "200", "0", "0"],
        ["1", "success", "demo", "2026-06-15", "200", "-", "-"]]
    assert rows[0][7] == rows[1][7]  # same findings both runs
    js = json.loads(runner.invoke(main, ["history", "-c", str(cfg), "--json"]).output)
    assert [(r["id"], r["status"], r["records"]) for r in js] == [(2, "success", 200),
                                                                 (1, "success", 200)]


def _run_cli(cfg: Path, out: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "auditor.app.cli", "run", "-c", str(cfg), "-o", str(out)],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def test_two_processes_run_the_same_source_at_once(tmp_path, backend) -> None:
    cfg = tmp_path / "audit.toml"
    hist = "\n".join(f"{k} = {json.dumps(v)}" for k, v in backend.items())
    # 2,000 deals: the two processes start together and meet at the run lock whatever the size
    cfg.write_text('[audit]\nas_of = 2026-06-15\n[source]\ntype = "demo"\nsize = 2000\n'
                   f'[history]\n{hist}\n[report]\nformats = ["json"]\n')
    env = {k: v for k, v in os.environ.items() if k.startswith("CRM_AUDIT_TEST")}
    procs = [_run_cli(cfg, tmp_path / f"out{i}", env) for i in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(c for c, _ in results)
    config = _load(cfg)
    with open_history(config) as store:
        runs = store.runs()
        assert store.integrity_check() == "ok"
    assert all(r["status"] == "success" for r in runs)  # nothing half-written, nothing stuck
    # the run lock (PostgreSQL: advisory lock; SQLite: a byte-range file lock) lets one run in
    # and the other waits for it (history.lock_wait_s, 300 s by default): both succeed, one
    # after the other (the refusal of a run that may not wait is tested below)
    assert codes == [0, 0] and len(runs) == 2


def _load(cfg: Path) -> AuditConfig:
    from auditor.config import load_config

    return load_config(cfg)


# -- PostgreSQL only -----------------------------------------------------------------------------
HOLDER = """
import sys, time
from auditor.history.postgres import PostgresHistoryStore
store = PostgresHistoryStore(sys.argv[1], password_env="CRM_AUDIT_TEST_PG_PASSWORD")
with store.run_lock("demo"):
    store.conn.execute("UPDATE runs SET host = 'other-pod' WHERE id = ?",
                       (store.begin_run("demo", "demo"),))
    print("locked", flush=True)
    time.sleep(120)
"""


def test_lock_is_held_across_processes_and_freed_when_the_holder_is_killed(
        tmp_path, pg, monkeypatch) -> None:
    db = pg.create_database("lock_kill")
    monkeypatch.setenv("CRM_AUDIT_TEST_PG_PASSWORD", pg.password)
    url = pg.url(db)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        cfg = tmp_path / "audit.toml"
        cfg.write_text('[audit]\nas_of = 2026-06-15\n[source]\ntype = "demo"\nsize = 200\n'
                       f'[history]\nurl = "{url}"\npassword_env = "CRM_AUDIT_TEST_PG_PASSWORD"\n'
                       'lock_wait_s = 1\n[report]\nformats = ["json"]\n')
        t0 = time.monotonic()
        res = CliRunner().invoke(main, ["run", "-c", str(cfg), "-o", str(tmp_path / "out")])
        assert 1.0 <= time.monotonic() - t0 < 60  # waited lock_wait_s, then gave up
        assert res.exit_code == 5
        assert re.search(r"another run of source 'demo' is in progress \(run 1 on host "
                         r"other-pod, pid \d+, started ", res.output)
        assert pg.password not in res.output
        # SIGKILL: no cleanup runs; the server drops the connection and with it the lock
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        time.sleep(0.5)
        res = CliRunner().invoke(main, ["run", "-c", str(cfg), "-o", str(tmp_path / "out")])
        assert res.exit_code == 0, res.output
        with open_history(_load(cfg)) as store:
            runs = store.runs()
        assert [(r["id"], r["status"]) for r in runs] == [(2, "success"), (1, "interrupted")]
        assert "run lock was free" in runs[1]["error"]
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_password_in_history_url_is_refused(tmp_path) -> None:
    cfg = make_config(tmp_path, history={"url": "postgresql://audit:s3cret@127.0.0.1:1/x"})
    with pytest.raises(Exception, match="history.password_env") as exc:
        open_history(cfg)
    assert "s3cret" not in str(exc.value)


def test_both_backends_have_the_same_tables_and_columns(tmp_path, pg) -> None:
    """Migrated to the latest version, both have the same tables and columns (types aside)."""
    assert len(MIGRATIONS) == len(PG_MIGRATIONS)
    lite = HistoryStore(tmp_path / "h.sqlite")
    with lite:
        tables = [r[0] for r in lite.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'sqlite_sequence'")]
        lite_cols = {(t, r[1]) for t in tables
                     for r in lite.conn.execute(f"PRAGMA table_info({t})")}
    db = pg.create_database("h_columns")
    with PostgresHistoryStore(pg.url(db), password_env="PGPW",
                              env={"PGPW": pg.password}) as store:
        pg_cols = set(store.conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name <> 'schema_version'").fetchall())
    assert lite_cols == pg_cols - PG_ONLY_COLUMNS
    assert {t for t, _ in lite_cols} == {
        "runs", "run_findings", "findings", "metrics", "snapshots", "derived_history"}


def test_incremental_second_run_merges_into_the_stored_snapshot(tmp_path, backend,
                                                                scripted) -> None:
    from tests.auditor.test_incremental import ChangingCrm

    crm = ChangingCrm()
    scripted.script = [crm.before, crm.pull_second]
    cfg = _cfg(tmp_path, backend)
    execute(cfg, out_dir=tmp_path / "out")
    with open_history(cfg) as store:
        since = store.last_snapshot("demo").pull_started_at
    inc = execute(cfg, out_dir=tmp_path / "out")
    assert scripted.calls == [None, since]
    assert inc.snapshot.meta.incremental is True
    assert (inc.history.resolved, inc.history.new) == (5, 0)
    with open_history(cfg) as store:
        assert [r["incremental"] for r in store.runs()] == [True, False]
        stored = store.last_snapshot("demo").snapshot
    assert sorted(stored.opportunities["id"]) == sorted(crm.after.opportunities["id"])


def test_observed_stage_history_over_three_runs(tmp_path, backend, scripted) -> None:
    from datetime import timedelta

    from tests.auditor.test_observed_history import DAY1, _csv_like

    scripted.script = [
        _csv_like({"D1": "contact", "D2": "contact"}),
        _csv_like({"D1": "contact", "D2": "qualification"}),
        _csv_like({"D1": "discovery", "D2": "discovery"}),
    ]
    cfg = _cfg(tmp_path, backend)
    runs = [execute(cfg, out_dir=tmp_path / "out", as_of=DAY1 + timedelta(days=i))
            for i in range(3)]
    ql01 = [set(r.result.violations.loc[r.result.violations["rule_code"] == "QL01",
                                        "opportunity_id"]) for r in runs]
    assert ql01 == [set(), set(), {"D1"}]  # D1 skipped qualification; D2 went through it
    with open_history(cfg) as store:
        hist = store.derived_history("demo")
    assert hist[["opportunity_id", "stage"]].values.tolist() == [
        ["D1", "contact"], ["D2", "contact"], ["D2", "qualification"], ["D1", "discovery"],
        ["D2", "discovery"]]
