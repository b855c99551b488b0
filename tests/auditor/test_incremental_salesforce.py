"""Acceptance (issue 7, item 4): incremental second run against the mocked Salesforce org.

The fake org answers SOQL like Salesforce does for what the connector asks: ``SystemModstamp >
X`` filters, ``queryAll`` returning deleted rows (``IsDeleted``), pages of 400 records. The
API calls of the second run grow with the number of changed records, not with the org, and the
audit finds exactly what a full pull of the changed org finds.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
import responses

from auditor.app.run import execute
from auditor.config import parse_config
from auditor.history import HistoryStore
from tests.connectors.salesforce.fake_org import (
    INSTANCE_URL,
    SESSION_ENV,
    FakeOrg,
    rest_pages,
)

N_OPPS = 900  # 3 pages of opportunities
#: records per page: Salesforce sends at most 2,000, and may send fewer; the fake org's smaller
#: pages keep three pages of deals and eight of history with a fifth of the records
PAGE = 400
OLD = "2024-02-01T00:00:00.000+0000"
STAGES = [
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
]


def _sf_time(dt: datetime) -> str:
    """Salesforce's datetime form, to the millisecond (as SystemModstamp is)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _parse(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%f%z")


class ChangingOrg(FakeOrg):
    """The fake org (which filters and pages every query like the real API) seeded with a
    900-deal org that ``change`` edits, deletes, purges and adds to."""

    def __init__(self, rsps: responses.RequestsMock) -> None:
        recorded = rest_pages()
        super().__init__(rsps, pages={})
        self.records: dict[str, list[dict[str, Any]]] = {
            obj: [r for page in recorded[obj] for r in page["records"]]
            for obj in ("OpportunityStage", "User")
        }
        self.records["Opportunity"] = [self._opp(i) for i in range(N_OPPS)]
        self.records["OpportunityHistory"] = [h for i in range(N_OPPS) for h in self._history(i)]
        self.page_size = {obj: PAGE for obj in self.records}

    @staticmethod
    def _opp(i: int, stage: str | None = None, modstamp: str = OLD) -> dict[str, Any]:
        stage = stage or STAGES[i % 6]
        return {
            "attributes": {"type": "Opportunity"},
            "Id": f"0068d0000{i:06d}AAA",
            "Name": f"Deal {i}",
            "AccountId": None,
            "Account": None,
            "OwnerId": "0058d0000001AnnAAA",
            "Owner": {"Name": "Ann Lee"},
            "StageName": stage,
            "IsClosed": stage == "Closed Won",
            "IsWon": stage == "Closed Won",
            "Amount": float(1000 + i),
            "Probability": 10.0,
            "ForecastCategoryName": "Pipeline",
            "CloseDate": "2024-12-31",
            "CreatedDate": "2024-01-02T00:00:00.000+0000",
            "LastModifiedDate": modstamp,
            "LastActivityDate": None,
            # every fifth open deal past first contact has no next step (FU01)
            "NextStep": None if i % 5 == 0 else "Call",
            "LeadSource": "Web",
            "SystemModstamp": modstamp,
            "IsDeleted": False,
        }

    @staticmethod
    def _history(i: int) -> list[dict[str, Any]]:
        # deals at "Needs Analysis" or later skipped Qualification when i % 7 == 0 (QL01)
        path = STAGES[: i % 6 + 1]
        if i % 7 == 0:
            path = [s for s in path if s != "Qualification"]
        return [
            {
                "attributes": {"type": "OpportunityHistory"},
                "Id": f"0088d{i:07d}{k}AA",
                "OpportunityId": f"0068d0000{i:06d}AAA",
                "StageName": s,
                "CloseDate": "2024-12-31",
                "PrevCloseDate": None,
                "CreatedDate": f"2024-01-{k + 2:02d}T00:00:00.000+0000",
                "SystemModstamp": OLD,
            }
            for k, s in enumerate(path)
        ]

    def change(self, when: datetime) -> dict[str, list[str]]:
        """Fix some next steps, move some deals on, delete some, add some; all at ``when``."""
        stamp = _sf_time(when)
        opps = {r["Id"]: r for r in self.records["Opportunity"]}
        ids = list(opps)
        fixed = [i for n, i in enumerate(ids) if n % 5 == 0 and n % 6 in (1, 2, 3, 4)][:20]
        moved = [i for n, i in enumerate(ids) if n % 6 == 3 and n % 5 and n % 7][:15]
        deleted = [i for n, i in enumerate(ids) if n % 6 == 2 and n % 5 == 0][20:25]
        for k, i in enumerate(fixed):
            opps[i].update(NextStep="Send proposal", SystemModstamp=stamp, LastModifiedDate=stamp)
            if k < 5:  # an amount change writes a history row with the same stage
                opps[i]["Amount"] += 500
                self.records["OpportunityHistory"].append(
                    {
                        "attributes": {"type": "OpportunityHistory"},
                        "Id": f"0088dAMT{k:06d}AA",
                        "OpportunityId": i,
                        "StageName": opps[i]["StageName"],
                        "CloseDate": "2024-12-31",
                        "PrevCloseDate": None,
                        "CreatedDate": stamp,
                        "SystemModstamp": stamp,
                    }
                )
        for k, i in enumerate(moved):
            opps[i].update(
                StageName="Negotiation/Review", SystemModstamp=stamp, LastModifiedDate=stamp
            )
            self.records["OpportunityHistory"].append(
                {
                    "attributes": {"type": "OpportunityHistory"},
                    "Id": f"0088dNEW{k:06d}AA",
                    "OpportunityId": i,
                    "StageName": "Negotiation/Review",
                    "CloseDate": "2024-12-31",
                    "PrevCloseDate": None,
                    "CreatedDate": stamp,
                    "SystemModstamp": stamp,
                }
            )
        closed = [ids[63]]  # at Proposal/Price Quote since January, and skipped qualification
        opps[closed[0]].update(StageName="Closed Won", IsClosed=True, IsWon=True,
                               SystemModstamp=stamp, LastModifiedDate=stamp)
        self.records["OpportunityHistory"].append({
            "attributes": {"type": "OpportunityHistory"}, "Id": "0088dCLOSED00AA",
            "OpportunityId": closed[0], "StageName": "Closed Won", "CloseDate": "2024-12-31",
            "PrevCloseDate": None, "CreatedDate": stamp, "SystemModstamp": stamp})
        for k, i in enumerate(deleted):
            self.delete(i, when)  # to the Recycle Bin: queryAll shows IsDeleted = true
            if k % 2:  # ... and emptied from it: only the deleted resource still names them
                self.purge(i)
        new = [self._opp(N_OPPS + k, "Needs Analysis", stamp) for k in range(4)]
        # new deals created in Prospecting and moved straight on to discovery: QL01 (a deal
        # *created* in discovery would be a converted lead, not judged)
        self.records["Opportunity"].extend(new)
        self.records["OpportunityHistory"].extend(
            {
                "attributes": {"type": "OpportunityHistory"},
                "Id": f"0088dNEWOPP{k:03d}{step}A",
                "OpportunityId": r["Id"],
                "StageName": stage,
                "CloseDate": "2024-12-31",
                "PrevCloseDate": None,
                "CreatedDate": stamp,
                "SystemModstamp": stamp,
            }
            for k, r in enumerate(new)
            for step, stage in (("1", "Prospecting"), ("2", "Needs Analysis"))
        )
        return {"fixed": fixed, "moved": moved, "deleted": deleted, "closed": closed,
                "new": [r["Id"] for r in new]}


def _config(tmp_path, name: str):  # noqa: ANN001, ANN202
    return parse_config(
        {
            "audit": {"as_of": "2024-06-15"},
            "source": {
                "type": "salesforce",
                "auth": "session",
                "session_id_env": "SF_SESSION",
                "instance_url": INSTANCE_URL,
                "name": "acme",
                "bulk": "never",
                "team_field": "Department",
            },
            "history": {"path": f"{name}.sqlite"},
            "report": {"formats": ["json"]},
        },
        origin=str(tmp_path / f"{name}.toml"),
        base_dir=tmp_path,
    )


def _as_if_pulled_earlier(path, by: timedelta) -> None:  # noqa: ANN001
    """Move the stored snapshot's pull (and its stream state) back in time: the first run
    becomes yesterday's, so today's changes and deletions fall inside the next window."""
    import json
    import sqlite3

    con = sqlite3.connect(path)
    with con:
        for source, started, meta in con.execute(
                "SELECT source, pull_started_at, meta FROM snapshots").fetchall():
            m = json.loads(meta)
            m["stream_state"] = {k: (datetime.fromisoformat(v) - by).isoformat()
                                 for k, v in m.get("stream_state", {}).items()}
            con.execute("UPDATE snapshots SET pull_started_at = ?, meta = ? WHERE source = ?",
                        ((datetime.fromisoformat(started) - by).isoformat(), json.dumps(m),
                         source))
    con.close()


@pytest.fixture
def org(monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("SF_SESSION", SESSION_ENV["SF_SESSION"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield ChangingOrg(rsps)


def test_incremental_salesforce_run_costs_calls_per_change_and_finds_what_a_full_pull_finds(
    tmp_path, org
):
    users = len(org.records["User"])
    hist_rows = len(org.records["OpportunityHistory"])
    first = execute(_config(tmp_path, "nightly"), out_dir=tmp_path / "out")
    full_cost = (1 + 1 + math.ceil(users / PAGE) + math.ceil(N_OPPS / PAGE)
                 + math.ceil(hist_rows / PAGE))  # stages, describe, users, deals, history
    assert first.snapshot.meta.api_calls == full_cost == 1 + 1 + 1 + 3 + 8  # 3,043 history rows
    assert first.snapshot.meta.incremental is False

    _as_if_pulled_earlier(tmp_path / "nightly.sqlite", timedelta(days=1))
    changes = org.change(datetime.now(UTC) - timedelta(hours=1))
    n_soql = len(org.soql)
    second = execute(_config(tmp_path, "nightly"), out_dir=tmp_path / "out")
    soql = org.soql[n_soql:]
    assert [q.split(" FROM ")[1].split(" ")[0] for q in soql] == [  # describe is no SOQL
        "OpportunityStage",
        "User",
        "Opportunity",
        "OpportunityHistory",
    ]
    assert all("SystemModstamp >" in q for q in soql[2:])
    # 20 + 15 changed, 5 deleted (2 of them purged), 4 new deals: one page each for deals and
    # history, plus describe and the deleted resource; reconciliation is not due (the stored
    # snapshot is a full pull of minutes ago)
    assert second.snapshot.meta.incremental is True
    assert second.snapshot.meta.api_calls == 1 + 1 + 1 + 1 + 1 + 1
    assert sorted(second.snapshot.meta.deleted_ids) == sorted(changes["deleted"])
    assert second.snapshot.meta.extra["deleted_by"] == {"feed": 3, "removed": 5}
    assert second.snapshot.meta.extra["reconciled"] is None
    assert second.snapshot.meta.extra["merge"] == {
        "changed": 36,  # 20 fixed, 15 moved, 1 closed
        "added": 4,
        "removed": 5,
        "base_pulled_at": first.snapshot.meta.pulled_at.isoformat(),
    }
    h = second.history.to_dict()
    # the planted findings (other rules fire too; the full-pull comparison below covers them)
    planted = {"QL01", "FU01", "ST04"}
    # the four new deals skipped qualification; the first of them has no next step either
    assert {
        (i["rule_code"], i["opportunity_id"]) for i in h["new_items"] if i["rule_code"] in planted
    } == {*(("QL01", i) for i in changes["new"]), ("FU01", changes["new"][0])}
    group = {i: k for k, ids in changes.items() for i in ids}
    resolved = pd.Series(
        [
            (i["rule_code"], group.get(i["opportunity_id"]))
            for i in h["resolved_items"]
            if i["rule_code"] in planted
        ]
    ).value_counts()
    # next steps filled in, deals moved on from a stale proposal, deleted deals that had no next
    # step; the deals whose next step was filled in keep their stage entry date (re-derived
    # from the stored history: Salesforce only sends history rows written since the last pull)
    # (ST04 judges nothing here: LastActivityDate is empty in every record of this org, so
    # "idle since creation" would be a silent fallback for every deal)
    assert resolved.to_dict() == {
        ("FU01", "fixed"): 20,
        ("FU01", "deleted"): 5,
        # closed won: skipping qualification is no longer a to-do on it (process history)
        ("QL01", "closed"): 1,
    }
    st04 = second.result.coverage.set_index("rule_code").loc["ST04"]
    assert st04["evaluated"] == 0
    assert list(st04["reasons"]) == ["last_activity_at is empty in every record"]
    assert h["new"] == len(h["new_items"]) and h["resolved"] == len(h["resolved_items"])

    # the same org pulled in full into a fresh store: same findings, same score
    full = execute(_config(tmp_path, "fresh"), out_dir=tmp_path / "out-full")
    assert full.snapshot.meta.incremental is False
    cols = ["fingerprint", "rule_code", "opportunity_id", "message"]
    pd.testing.assert_frame_equal(
        second.result.violations[cols].sort_values("fingerprint").reset_index(drop=True),
        full.result.violations[cols].sort_values("fingerprint").reset_index(drop=True),
    )
    assert second.score == full.score
    assert len(second.snapshot.opportunities) == len(full.snapshot.opportunities) == N_OPPS - 1

    with HistoryStore(tmp_path / "nightly.sqlite") as store:
        assert [(r["incremental"], r["api_calls"]) for r in store.runs()] == [
            (True, 6),
            (False, full_cost),
        ]


def test_incremental_salesforce_run_with_no_stage_changes(tmp_path, org):
    execute(_config(tmp_path, "nightly"), out_dir=tmp_path / "out")
    _as_if_pulled_earlier(tmp_path / "nightly.sqlite", timedelta(hours=1))
    stamp = _sf_time(datetime.now(UTC) - timedelta(minutes=5))
    deal = org.records["Opportunity"][5]
    deal.update(NextStep="Workshop", SystemModstamp=stamp, LastModifiedDate=stamp)
    run = execute(_config(tmp_path, "nightly"), out_dir=tmp_path / "out")
    assert run.snapshot.meta.api_calls == 6
