"""The benchmark's nightly incremental run: a Salesforce source, 1 % of deals changed overnight.

Setup (not measured), ``setup(n, workdir)``:

- the demo org of ``n`` opportunities becomes the stored snapshot of a Salesforce source
  (``acme``): Salesforce-shaped ids (``006…``, ``005…``, ``001…``), source ``acme``, stream
  state of a pull that started ``T0`` = one day ago. It is audited and stored through the
  history store's API (``begin_run`` / ``commit_run``) as the source's last successful run, with
  its findings, metrics and snapshot;
- a fake org (``org.json``, served by tests/support/salesforce_server.py) holds what a real org
  would answer for this night: 1 % of the opportunities changed after ``T0`` (stage moves,
  close-date pushes, amount edits, each with its OpportunityHistory row), 15 deleted into the
  Recycle Bin and 10 purged from it (only the ``deleted`` resource still lists those), all
  history rows of those deals (old ones included), 2,000 deals *not* changed since ``T0`` (a
  query without the right ``SystemModstamp`` condition would return them, and the run fails the
  check), the users and the stage metadata.

Measured, ``measure(n, workdir)``: ``auditor.app.run.execute()`` exactly as ``crm-audit run``
does it, against the fake on https://127.0.0.1 (its own process): stored snapshot read, pull of
the changes, merge, rules, metrics, history diff, reports, store. Delivery off.
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "acme"
CHANGED_SHARE = 0.01
IN_RECYCLE_BIN, PURGED, UNCHANGED_GUARD = 15, 10, 2000
PAGE = 2000
STAGES = ["lead", "contact", "qualification", "discovery", "solution", "proposal", "negotiation",
          "closed_won", "closed_lost", "handoff"]
CLOSED = {"closed_won": (True, True), "closed_lost": (True, False), "handoff": (True, True)}
FORECAST = {"pipeline": "Pipeline", "best_case": "Best Case", "commit": "Commit",
            "closed": "Closed", "omitted": "Omitted"}
CUSTOM = {"product": "Product__c", "budget": "Budget__c", "authority": "Authority__c",
          "need": "Need__c", "timeline": "Timeline__c"}
TOKEN = "00Dbench0000001!BenchFakeSessionToken"


def source_options(instance_url: str) -> dict[str, Any]:
    return {
        "type": "salesforce", "name": SOURCE, "auth": "session", "session_id_env": "SF_SESSION",
        "instance_url": instance_url, "loss_reason_field": "Loss_Reason__c",
        "next_step_due_field": "Next_Step_Date__c", "handoff_field": "Handoff_Date__c",
        "pipeline_field": "Pipeline__c", "currency": "USD", "team_field": "Department",
        "custom_fields": CUSTOM, "stage_map": {s: s for s in STAGES},
    }


def _config(workdir: Path, instance_url: str, as_of: date, hist: Path, out: Path):  # noqa: ANN202
    from auditor.config import parse_config

    return parse_config(
        {"source": source_options(instance_url), "audit": {"as_of": as_of},
         "report": {"out_dir": str(out)}, "history": {"path": str(hist)}},
        origin="<benchmark incremental>", base_dir=workdir,
    )


def _sf_ids(prefix: str, ids: pd.Series) -> pd.Series:
    """OPP-0000001 → 006000000000001: 15 characters, Salesforce's shape."""
    digits = ids.astype("string").str.replace(r"\D", "", regex=True).str.zfill(12)
    return (prefix + digits).astype(ids.dtype)


def _sf_time(ts: pd.Series) -> pd.Series:
    s = ts.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return s.astype(object).where(ts.notna(), None)


def _sf_date(ts: pd.Series) -> pd.Series:
    s = ts.dt.strftime("%Y-%m-%d")
    return s.astype(object).where(ts.notna(), None)


def _plain(s: pd.Series) -> pd.Series:
    return s.astype(object).where(s.notna(), None)


def as_salesforce(snap: Any, t0: datetime) -> Any:
    """The demo snapshot as a Salesforce full pull started at ``t0`` would have stored it."""
    from auditor.snapshot import Snapshot, make_opportunities, make_owners, make_stage_history

    opp = snap.opportunities.copy()
    opp["id"] = _sf_ids("006", opp["id"])
    opp["account_id"] = _sf_ids("001", opp["account_id"])
    opp["owner_id"] = _sf_ids("005", opp["owner_id"])
    opp["source"] = SOURCE
    opp["url"] = "https://acme.my.salesforce.com/lightning/r/Opportunity/" + opp["id"] + "/view"
    hist = snap.stage_history.copy()
    hist["opportunity_id"] = _sf_ids("006", hist["opportunity_id"])
    owners = snap.owners.copy()
    owners["id"] = _sf_ids("005", owners["id"])
    owners["manager_id"] = _sf_ids("005", owners["manager_id"])
    state = {"bookmark": t0.isoformat(), "reconciled_at": t0.isoformat(),
             "removed_until": t0.isoformat()}
    meta = replace(snap.meta, source=SOURCE, source_type="salesforce", pulled_at=t0,
                   stream_state=state)
    return Snapshot(make_opportunities(opp), make_stage_history(hist), make_owners(owners),
                    meta).validate()


def _opportunity_records(o: pd.DataFrame, owners: pd.DataFrame, stamp: pd.Series) -> list[dict]:
    names = owners.set_index("id")["name"]
    frame = pd.DataFrame({
        "Id": _plain(o["id"]), "Name": _plain(o["name"]), "AccountId": _plain(o["account_id"]),
        "OwnerId": _plain(o["owner_id"]), "StageName": _plain(o["source_stage"]),
        "IsClosed": _plain(o["is_closed"]), "IsWon": _plain(o["is_won"]),
        "Amount": _plain(o["amount"]), "Probability": _plain(o["probability"] * 100),
        "ForecastCategoryName": _plain(o["forecast_category"].map(FORECAST)),
        "CloseDate": _sf_date(o["close_date"]), "CreatedDate": _sf_time(o["created_at"]),
        "LastModifiedDate": _sf_time(o["updated_at"]),
        "LastActivityDate": _sf_date(o["last_activity_at"]),
        "NextStep": _plain(o["next_step"]), "LeadSource": _plain(o["lead_source"]),
        "Loss_Reason__c": _plain(o["loss_reason"]),
        "Next_Step_Date__c": _sf_date(o["next_step_due"]),
        "Handoff_Date__c": _sf_time(o["handoff_at"]), "Pipeline__c": _plain(o["pipeline"]),
        **{sf: _plain(o[col]) for col, sf in CUSTOM.items()},
        "SystemModstamp": _sf_time(stamp), "IsDeleted": False,
    })
    recs = frame.to_dict("records")
    accounts = _plain(o["account_name"]).tolist()
    owner_names = _plain(o["owner_id"].map(names)).tolist()
    for r, acc, own in zip(recs, accounts, owner_names, strict=True):
        r["attributes"] = {"type": "Opportunity"}
        r["Account"] = {"Name": acc} if r["AccountId"] is not None else None
        r["Owner"] = {"Name": own} if r["OwnerId"] is not None else None
    return recs


def _history_records(h: pd.DataFrame, prev_close: pd.Series, stamp: pd.Series,
                     first: int) -> list[dict]:
    frame = pd.DataFrame({
        "Id": [f"008{i:012d}" for i in range(first, first + len(h))],
        "OpportunityId": _plain(h["opportunity_id"]).to_numpy(),
        "StageName": _plain(h["source_stage"]).to_numpy(),
        "CloseDate": _sf_date(h["close_date"]).to_numpy(),
        "PrevCloseDate": _sf_date(prev_close).to_numpy(),
        "CreatedDate": _sf_time(h["entered_at"]).to_numpy(),
        "SystemModstamp": _sf_time(stamp).to_numpy(), "IsDeleted": False,
    })
    recs = frame.to_dict("records")
    for r in recs:
        r["attributes"] = {"type": "OpportunityHistory"}
    return recs


def fake_org(sf: Any, t0: datetime, change_day: date, seed: int = 11) -> dict[str, Any]:
    """The night's org: what changed after ``t0`` and what a query must not return."""
    rng = np.random.default_rng(seed)
    opp, hist, owners = sf.opportunities, sf.stage_history, sf.owners
    n = len(opp)
    n_changed = round(n * CHANGED_SHARE)
    pick = rng.permutation(n)[: n_changed + IN_RECYCLE_BIN + PURGED + UNCHANGED_GUARD]
    changed_pos = np.sort(pick[:n_changed])
    bin_pos = pick[n_changed: n_changed + IN_RECYCLE_BIN]
    purged_pos = pick[n_changed + IN_RECYCLE_BIN: n_changed + IN_RECYCLE_BIN + PURGED]
    guard_pos = pick[n_changed + IN_RECYCLE_BIN + PURGED:]
    now = datetime.now(UTC)
    span = (now - timedelta(minutes=5) - (t0 + timedelta(minutes=1))).total_seconds()

    def stamps(k: int) -> pd.Series:  # SystemModstamp: after t0, before now (minute-safe)
        secs = np.sort(rng.uniform(0, span, k))
        return pd.Series(pd.to_datetime(t0 + timedelta(minutes=1), utc=True)
                         + pd.to_timedelta(secs, unit="s"))

    day = pd.Timestamp(change_day, tz="UTC")
    ch = opp.iloc[changed_pos].reset_index(drop=True).copy()
    when = day + pd.to_timedelta(rng.uniform(9 * 3600, 17 * 3600, len(ch)), unit="s")
    when = pd.Series(when.astype("datetime64[us, UTC]"))
    code = pd.Categorical(ch["stage"].astype(object), categories=STAGES).codes
    is_open = ~ch["is_closed"].fillna(False).to_numpy(dtype=bool) & (code >= 0) & (code < 7)
    advance = is_open & (rng.random(len(ch)) < 0.5)
    push = is_open & ~advance
    edit = ~is_open
    new_code = np.where(advance, code + 1, code)
    new_stage = np.array(STAGES + [None], dtype=object)[np.where(new_code >= 0, new_code, 10)]
    old_close = ch["close_date"].copy()
    ch["source_stage"] = ch["source_stage"].astype(object).where(~advance, new_stage)
    won = pd.Series(new_stage).map(lambda s: CLOSED.get(s, (False, False)))
    ch.loc[advance, "is_closed"] = [c for c, _ in won[advance]]
    ch.loc[advance, "is_won"] = [w for _, w in won[advance]]
    ch.loc[push, "close_date"] = ch.loc[push, "close_date"] + pd.Timedelta(days=30)
    ch.loc[edit, "amount"] = (ch.loc[edit, "amount"] * 1.05).round(0)
    ch["updated_at"] = when.to_numpy()
    ch.loc[is_open, "last_activity_at"] = day.floor("D")
    ch.loc[is_open, "next_step"] = "Follow-up call booked"
    ch_stamp = stamps(len(ch))

    # one OpportunityHistory row per changed deal (Salesforce writes one on a change of stage,
    # amount or close date), written with the change
    new_h = pd.DataFrame({"opportunity_id": ch["id"], "source_stage": ch["source_stage"],
                          "close_date": ch["close_date"], "entered_at": when})
    prev = old_close.where(push, ch["close_date"])

    gone = opp.iloc[np.concatenate([bin_pos, purged_pos])]
    bin_del = opp.iloc[bin_pos].reset_index(drop=True)
    guard = opp.iloc[guard_pos].reset_index(drop=True)
    bin_stamp = stamps(len(bin_del))
    records = (_opportunity_records(ch, owners, ch_stamp)
               + _opportunity_records(guard, owners, guard["updated_at"])
               + _opportunity_records(bin_del, owners, bin_stamp))
    for r in records[len(ch) + len(guard):]:
        r["IsDeleted"] = True

    # the old history rows of every deal the fake holds: a history query without the
    # SystemModstamp condition returns them
    held = pd.concat([ch["id"], guard["id"], bin_del["id"]])
    old = hist[hist["opportunity_id"].isin(held)]
    close = opp.set_index("id")["close_date"]
    old = old.assign(close_date=old["opportunity_id"].map(close).to_numpy())
    history = (_history_records(old, pd.Series(pd.NaT, index=old.index), old["entered_at"], 0)
               + _history_records(new_h, prev, ch_stamp, len(old)))
    deleted = [(str(i), t.isoformat()) for i, t in zip(
        gone["id"], pd.concat([bin_stamp, stamps(PURGED)]).dt.to_pydatetime(), strict=True)]

    users = pd.DataFrame({
        "Id": _plain(owners["id"]), "Name": _plain(owners["name"]),
        "Email": _plain(owners["email"]), "IsActive": _plain(owners["active"]),
        "ManagerId": _plain(owners["manager_id"]), "Department": _plain(owners["team"]),
        "UserType": "Standard", "IsDeleted": False,
    }).to_dict("records")
    stages = [{"ApiName": s, "MasterLabel": s, "IsActive": True,
               "IsClosed": CLOSED.get(s, (False, False))[0],
               "IsWon": CLOSED.get(s, (False, False))[1], "SortOrder": k + 1,
               "DefaultProbability": None, "ForecastCategoryName": None}
              for k, s in enumerate(STAGES)]
    stages.append({"ApiName": "On hold (legacy)", "MasterLabel": "On hold (legacy)",
                   "IsActive": False, "IsClosed": False, "IsWon": False, "SortOrder": 99,
                   "DefaultProbability": None, "ForecastCategoryName": None})
    expect = {
        "changed": int(len(ch)), "deleted": IN_RECYCLE_BIN + PURGED,
        "opportunity_rows": int(len(ch) + len(bin_del)), "history_rows": int(len(new_h)),
        "users": int(len(owners)), "stage_moves": int(advance.sum()),
        "close_date_pushes": int(push.sum()), "amount_edits": int(edit.sum()),
    }
    return {"records": {"Opportunity": records, "OpportunityHistory": history, "User": users,
                        "OpportunityStage": stages},
            "deleted": deleted, "expect": expect}


def predicted_calls(users: int, opportunity_rows: int, history_rows: int) -> int:
    """docs/connectors/salesforce.md, incremental REST pull (no reconciliation due)."""
    return (1 + 1 + math.ceil(users / PAGE) + max(1, math.ceil(opportunity_rows / PAGE))
            + max(1, math.ceil(history_rows / PAGE)) + 1)


def setup(n: int, workdir: Path, as_of: date) -> dict[str, Any]:
    """Store the previous run and write the night's fake org (see the module doc)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from benchmark import load_snapshot

    from auditor.app.run import audit_snapshot
    from auditor.history import HistoryStore

    t = time.perf_counter()
    folder = workdir / f"incremental-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    t0 = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
    sf = as_salesforce(load_snapshot(workdir / f"snapshot-{n}"), t0)
    store_path = folder / "history.sqlite"
    config = _config(folder, "https://acme.my.salesforce.com", as_of, store_path, folder / "out")
    with HistoryStore(store_path) as store:
        run_id = store.begin_run(SOURCE, "salesforce", started_at=t0, as_of=as_of.isoformat(),
                                 config_origin=config.origin)
        run = audit_snapshot(sf, config, as_of=as_of)
        run.run_id = run_id
        run.started_at = t0
        run.finished_at = t0 + timedelta(minutes=2)
        store.commit_run(run_id, summary=run.summary(), violations=run.result.violations,
                         metrics=run.metrics.to_dict(), snapshot=sf, pull_started_at=t0)
    org = fake_org(sf, t0, as_of + timedelta(days=1))
    (folder / "org.json").write_text(json.dumps(org))
    info = {"t0": t0.isoformat(), "expect": org["expect"],
            "previous_findings": int(len(run.result.violations)),
            "setup_s": round(time.perf_counter() - t, 1)}
    (folder / "setup.json").write_text(json.dumps(info))
    return info


def measure(n: int, workdir: Path, as_of: date) -> dict[str, Any]:
    """One measured nightly run (its own process: the peak RSS is the run's)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from benchmark import cpu_s

    from auditor.app.run import execute

    folder = workdir / f"incremental-{n}"
    info = json.loads((folder / "setup.json").read_text())
    expect = info["expect"]
    store = folder / "history-run.sqlite"
    # each measured run starts from the seed: the database and its snapshot folder (schema 2)
    shutil.copyfile(folder / "history.sqlite", store)
    snaps = store.with_name(store.name + ".snapshots")
    shutil.rmtree(snaps, ignore_errors=True)
    shutil.copytree(folder / "history.sqlite.snapshots", snaps)
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.support.salesforce_server", str(folder / "org.json")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    saved = dict(os.environ)
    try:
        assert server.stdout is not None
        fake = json.loads(server.stdout.readline())
        os.environ.update(SF_SESSION=TOKEN, REQUESTS_CA_BUNDLE=fake["ca_file"],
                          NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
        day = as_of + timedelta(days=1)
        config = _config(folder, fake["instance_url"], day, store, folder / "out")
        cpu0, t = cpu_s(), time.perf_counter()
        run = execute(config, as_of=day, deliver=False)
        total, cpu = time.perf_counter() - t, cpu_s() - cpu0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        log = json.loads(urllib.request.urlopen(  # noqa: S310 - our own fake on 127.0.0.1
            fake["instance_url"] + "/__fake/log",
            context=__import__("ssl").create_default_context(cafile=fake["ca_file"]),
        ).read())
    finally:
        os.environ.clear()
        os.environ.update(saved)
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=30)
    meta = run.snapshot.meta
    merge = dict(meta.extra.get("merge") or {})
    soql = [e["soql"] for e in log if e["soql"]]
    since = datetime.fromisoformat(info["t0"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    asked_right = {
        obj: any(f"FROM {obj}" in q and f"SystemModstamp > {since}" in q for q in soql)
        for obj in ("Opportunity", "OpportunityHistory")
    }
    predicted = predicted_calls(expect["users"], expect["opportunity_rows"],
                                expect["history_rows"])
    checks = {
        "incremental": bool(meta.incremental),
        "queries_filter_on_bookmark": all(asked_right.values()),
        "changed_as_planted": merge.get("changed") == expect["changed"],
        "removed_as_planted": merge.get("removed") == expect["deleted"],
        "records": int(len(run.snapshot.opportunities)) == n - expect["deleted"],
        "calls_as_formula": int(meta.api_calls) == predicted,
    }
    return {
        "kind": "incremental",
        "opportunities": n,
        "changed": expect["changed"],
        "deleted": expect["deleted"],
        "history_rows_pulled": expect["history_rows"],
        "api_calls": int(meta.api_calls),
        "predicted_calls": predicted,
        "requests_served": len(log),
        "phases_s": {k: round(v, 3) for k, v in run.timings.items()},
        "pull_detail_s": dict(meta.extra.get("incremental_timings_s") or {}),
        "total_s": round(total, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mib": round(rss, 1),
        "findings": int(len(run.result.violations)),
        "merge": {k: merge.get(k) for k in ("changed", "added", "removed")},
        "checks": checks,
    }
