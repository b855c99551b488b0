"""Acceptance (issue 7, item 4): incremental second run against the fake HubSpot API.

The fake (tests/connectors/hubspot/fake_server.py) serves the deals list, the search endpoint
filtered by ``hs_lastmodifieddate`` and the archived-deals list on 127.0.0.1. The second run's
calls grow with the changes (one search page), not with the portal, and the audit finds exactly
what a full pull of the changed portal finds.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from auditor.app.run import execute
from auditor.config import parse_config
from auditor.history import HistoryStore
from tests.connectors.hubspot.fake_server import FakeHubSpot

TOKEN = "pat-na1-00000000-test-token"
N_DEALS = 450  # 5 pages of 100 in a full pull
STAGES = [
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
]
OLD = "2024-02-01T00:00:00.000Z"


def _ts(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _deal(i: int, stage: str | None = None, modified: str = OLD) -> dict[str, Any]:
    k = i % 6 if stage is None else STAGES.index(stage)
    path = STAGES[: k + 1]
    if i % 7 == 0:  # deals past qualification that skipped it (QL01)
        path = [s for s in path if s != "qualifiedtobuy"]
    props = {
        "dealname": f"Deal {i}",
        "amount": str(1000 + i),
        "pipeline": "default",
        "dealstage": STAGES[k],
        "createdate": "2024-01-01T00:00:00.000Z",
        "hs_lastmodifieddate": modified,
        "hubspot_owner_id": "501",
        "closedate": "2024-12-31T00:00:00.000Z",
        "hs_is_closed": str(STAGES[k] == "closedwon").lower(),
        "hs_is_closed_won": str(STAGES[k] == "closedwon").lower(),
        # every fifth deal has no next step and no next activity (FU01 once past contact)
        "hs_next_step": None if i % 5 == 0 else "Call",
        "notes_next_activity_date": None,
        "notes_last_updated": "2024-01-20T00:00:00.000Z",
    }
    for n, s in enumerate(path):
        props[f"hs_v2_date_entered_{s}"] = f"2024-01-{n + 2:02d}T00:00:00.000Z"
    return {"id": str(10_000 + i), "properties": props}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    with FakeHubSpot(token=TOKEN) as f:
        f.deals = [_deal(i) for i in range(N_DEALS)]
        f.archived_deals = []
        yield f


def _config(tmp_path, fake: FakeHubSpot, name: str):  # noqa: ANN001, ANN202
    return parse_config(
        {
            "audit": {"as_of": "2024-06-15"},
            "source": {
                "type": "hubspot",
                "host": fake.host,
                "name": "hs",
                "portal_id": 1,
                "portal_timezone": "UTC",
                "search_min_interval_s": 0,
            },
            "history": {"path": f"{name}.sqlite"},
            "report": {"formats": ["json"]},
        },
        origin=str(tmp_path / f"{name}.toml"),
        base_dir=tmp_path,
    )


def _change(fake: FakeHubSpot) -> dict[str, list[str]]:
    """Fill next steps, move deals on, archive some, add some: all modified now."""
    now = datetime.now(UTC)
    stamp = _ts(now)
    by_id = {d["id"]: d for d in fake.deals}
    ids = list(by_id)
    fixed = [i for n, i in enumerate(ids) if n % 5 == 0 and n % 6 in (1, 2, 3, 4)][:12]
    moved = [i for n, i in enumerate(ids) if n % 6 == 1 and n % 5 and n % 7][:6]
    archived = [i for n, i in enumerate(ids) if n % 6 == 2 and n % 5 == 0][12:15]
    for i in fixed:
        by_id[i]["properties"].update(hs_next_step="Send proposal", hs_lastmodifieddate=stamp)
    for i in moved:
        by_id[i]["properties"].update(
            dealstage="presentationscheduled",
            hs_lastmodifieddate=stamp,
            hs_v2_date_entered_presentationscheduled=stamp,
        )
    for i in archived:
        deal = by_id[i]
        fake.deals.remove(deal)
        fake.archived_deals.append({**deal, "archived": True, "archivedAt": stamp})
    # two new deals straight into presentation, skipping qualification (numbers divisible by 7)
    new = [_deal(n, "presentationscheduled", stamp) for n in (455, 462)]
    for d in new:
        d["properties"]["createdate"] = _ts(now - timedelta(seconds=1))
    fake.deals.extend(new)
    return {"fixed": fixed, "moved": moved, "archived": archived, "new": [d["id"] for d in new]}


def test_incremental_hubspot_run_costs_calls_per_change_and_finds_what_a_full_pull_finds(
    tmp_path, fake
):
    first = execute(_config(tmp_path, fake, "nightly"), out_dir=tmp_path / "out")
    assert first.snapshot.meta.incremental is False
    full_lists = [r for r in fake.calls("/crm/v3/objects/deals") if "archived" not in r.query]
    assert len(full_lists) == math.ceil(N_DEALS / 100) == 5

    changes = _change(fake)
    n_before = len(fake.requests)
    second = execute(_config(tmp_path, fake, "nightly"), out_dir=tmp_path / "out")
    calls = fake.requests[n_before:]
    assert second.snapshot.meta.incremental is True
    # one search page for the 20 changed deals, one page of archived deals; no deal listing
    assert [c.path for c in calls if "/objects/deals" in c.path] == [
        "/crm/v3/objects/deals/search",
        "/crm/v3/objects/deals",
    ]
    assert [c.query.get("archived") for c in calls if c.path == "/crm/v3/objects/deals"] == [
        ["true"]
    ]
    assert second.snapshot.meta.api_calls == len(calls) < first.snapshot.meta.api_calls
    assert second.snapshot.meta.extra["merge"] == {
        "changed": 18,
        "added": 2,
        "removed": 3,
        "base_pulled_at": first.snapshot.meta.pulled_at.isoformat(),
    }
    h = second.history.to_dict()
    planted = {"QL01", "FU01"}  # other rules fire too; the full-pull comparison covers them
    group = {i: k for k, ids in changes.items() for i in ids}

    def by_group(items: list[dict]) -> dict:
        keys = [(i["rule_code"], group.get(i["opportunity_id"])) for i in items]
        return pd.Series([k for k in keys if k[0] in planted]).value_counts().to_dict()

    # the two new deals skipped qualification; deal 455 has no next step either
    assert by_group(h["new_items"]) == {("QL01", "new"): 2, ("FU01", "new"): 1}
    assert by_group(h["resolved_items"]) == {("FU01", "fixed"): 12, ("FU01", "archived"): 3}
    # fixed cost (pipelines, active and archived owners) + pages: 5 deal pages in full, one
    # search page (up to 200 changed deals) and one archived page incrementally
    assert (first.snapshot.meta.api_calls, second.snapshot.meta.api_calls) == (3 + 5, 3 + 2)

    full = execute(_config(tmp_path, fake, "fresh"), out_dir=tmp_path / "out-full")
    cols = ["fingerprint", "rule_code", "opportunity_id", "message"]
    pd.testing.assert_frame_equal(
        second.result.violations[cols].sort_values("fingerprint").reset_index(drop=True),
        full.result.violations[cols].sort_values("fingerprint").reset_index(drop=True),
    )
    assert second.score == full.score
    with HistoryStore(tmp_path / "nightly.sqlite") as store:
        assert [r["incremental"] for r in store.runs()] == [True, False]
