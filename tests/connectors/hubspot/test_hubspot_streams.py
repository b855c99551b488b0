"""Issue 13, HubSpot: no change missed (search lag, edits during paging), archived deals,
close dates by calendar day, and a week-1 / week-2 run equal to a fresh full audit.

The fake's search evaluates the filters it gets, honours one sort, pages by offset and lags
behind writes (``search_lag_ms`` on the fake's clock), like the real search API.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from auditor.app.run import execute
from auditor.config import parse_config
from connectors.streams import PriorPull, StreamState
from tests.connectors.hubspot.conftest import CUSTOM, STAGE_MAP, TOKEN, synthetic_deals
from tests.connectors.hubspot.fake_server import _iso

SEARCH = "/crm/v3/objects/deals/search"
T0 = datetime(2024, 6, 1, tzinfo=UTC)


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


class Clock:
    """One clock for the fake portal and the connector."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def ms(self) -> int:
        return _ms(self.at)


def _offset_pull(fake, page: int) -> list[str]:  # noqa: ANN001
    """How the connector used to page a search (by offset), for the control below."""
    import json
    import urllib.request

    ids, after = [], 0
    while True:
        body = {"filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate",
                                               "operator": "GTE", "value": "0"}]}],
                "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                "properties": ["dealname"], "limit": page, "after": str(after)}
        req = urllib.request.Request(fake.host + SEARCH, json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}",
                                              "Content-Type": "application/json"})
        out = json.loads(urllib.request.urlopen(req).read())
        ids += [r["id"] for r in out["results"]]
        if "paging" not in out:
            return ids
        after = int(out["paging"]["next"]["after"])


def _edit_after_first_search(deal_id: str, clock: Clock):  # noqa: ANN202
    calls = []

    def hook(fake) -> None:  # noqa: ANN001
        calls.append(1)
        if len(calls) == 2:  # page 1 was answered; a user saves a deal before page 2
            clock.at += timedelta(seconds=1)
            fake.edit(deal_id, dealname="edited during the pull")
    return hook


def test_fake_search_skips_a_deal_when_paged_by_offset_during_an_edit(fake) -> None:
    """The failure issue 13 describes, reproduced on the fake: an edit moves a deal from
    page 1 to the end, the offsets shift, and the first deal of page 2 is never returned."""
    clock = Clock(T0)
    fake.clock = clock.ms
    fake.deals = synthetic_deals(10)
    fake.on_search = _edit_after_first_search("1001", clock)
    ids = _offset_pull(fake, page=3)
    assert "1003" not in ids  # skipped for good
    assert ids.count("1001") == 2


def test_no_deal_is_missed_when_one_is_edited_during_paging(fake, make_connector) -> None:
    clock = Clock(T0)
    fake.clock = clock.ms
    fake.deals = synthetic_deals(10)
    fake.on_search = _edit_after_first_search("1001", clock)
    c = make_connector(search_page_size=3, portal_id=1, portal_timezone="UTC",
                       track_archived=False)
    c._now = lambda: clock.at
    snap = c.pull(since=datetime(2024, 1, 1, tzinfo=UTC))
    assert snap.opportunities["id"].tolist() == [str(1000 + i) for i in range(10)]
    assert snap.opportunities.set_index("id").loc["1001", "name"] == "edited during the pull"


def _pull_at(make_connector, clock: Clock, prior: PriorPull, **opts):  # noqa: ANN001, ANN003, ANN202
    c = make_connector(portal_id=4242, portal_timezone="America/New_York", **opts)
    c._now = lambda: clock.at
    c.prior = prior
    return c.pull(since=prior.since)


@pytest.mark.parametrize("lookback_s,found", [(3600, True), (0, False)])
def test_a_deal_indexed_late_is_pulled_by_the_next_run(fake, make_connector, lookback_s,
                                                       found) -> None:
    """A deal saved 10 s before a pull becomes searchable 60 s later: the pull cannot see it.
    The next pull asks from the last pull's start minus the lookback, and finds it; without
    the lookback (the old behaviour) it would be missed for good."""
    clock = Clock(T0)
    fake.clock, fake.search_lag_ms = clock.ms, 60_000
    ids = frozenset(d["id"] for d in fake.deals)
    prior = PriorPull(T0, ids, T0, StreamState(T0, T0, T0))

    clock.at = T0 + timedelta(minutes=30) - timedelta(seconds=10)
    fake.edit("105", dealname="renamed just before the pull")
    clock.at = T0 + timedelta(minutes=30)
    run2 = _pull_at(make_connector, clock, prior, lookback_s=lookback_s)
    assert "105" not in set(run2.opportunities["id"])  # not yet searchable

    clock.at = T0 + timedelta(hours=1)
    prior = PriorPull(T0 + timedelta(minutes=30), ids, T0,
                      StreamState.from_meta(run2.meta.stream_state))
    run3 = _pull_at(make_connector, clock, prior, lookback_s=lookback_s)
    assert ("105" in set(run3.opportunities["id"])) is found
    if found:
        assert run3.opportunities.set_index("id").loc["105", "name"] == (
            "renamed just before the pull")
        first = fake.calls(SEARCH)[-1].body["filterGroups"][0]["filters"][0]
        assert first["value"] == str(_ms(T0 + timedelta(minutes=30) - timedelta(hours=1)))


def test_archived_deals_and_reconciliation_remove_what_left(fake, make_connector) -> None:
    clock = Clock(T0)
    fake.clock = clock.ms
    ids = frozenset(d["id"] for d in fake.deals) | {"199"}  # 199: hard-deleted, no trace
    clock.at = T0 + timedelta(hours=2)
    fake.archive("103")
    clock.at = T0 + timedelta(days=1)
    weekly = _pull_at(make_connector, clock, PriorPull(T0, ids, T0, StreamState(T0, T0, T0)))
    assert weekly.meta.deleted_ids == ["103"]  # reconciliation is not due yet
    assert weekly.meta.extra["reconciled"] is None

    clock.at = T0 + timedelta(days=8)  # a week after the last reconciliation
    later = _pull_at(make_connector, clock, PriorPull(T0 + timedelta(days=1), ids, T0,
                                                      StreamState.from_meta(
                                                          weekly.meta.stream_state)))
    assert later.meta.deleted_ids == ["103", "199"]
    assert later.meta.extra["deleted_by"] == {"reconciliation": 2}
    listing = [r for r in fake.calls("/crm/v3/objects/deals") if "archived" not in r.query]
    assert [r.query["properties"] for r in listing] == [["hs_object_id"]]


def test_close_date_resaved_at_another_time_of_day_is_no_change(fake, make_connector) -> None:
    """Portal in New York: 2024-06-30 picked in the morning, re-saved in the evening (after
    midnight UTC): the same calendar day. Then moved to 07-15: one change."""
    deal = next(d for d in fake.deals if d["id"] == "106")
    deal["propertiesWithHistory"]["closedate"] = [
        {"value": "2024-07-15T16:00:00Z", "timestamp": "2024-03-03T10:00:00Z"},
        {"value": "2024-07-01T01:30:00Z", "timestamp": "2024-02-21T09:00:00Z"},  # 06-30 21:30
        {"value": "2024-06-30T13:00:00Z", "timestamp": "2024-02-20T09:00:00Z"},  # 06-30 09:00
    ]
    c = make_connector(stage_history="full", portal_id=4242, portal_timezone="America/New_York")
    opp = c.pull().opportunities.set_index("id")
    assert opp.loc["106", "close_date_changes"] == 1
    c = make_connector(stage_history="full", portal_id=4242, portal_timezone="UTC")
    assert c.pull().opportunities.set_index("id").loc["106", "close_date_changes"] == 2


def _config(tmp_path, fake, name: str):  # noqa: ANN001, ANN202
    return parse_config(
        {
            "audit": {"as_of": "2024-03-10"},
            "source": {"type": "hubspot", "name": "hs", "host": fake.host,
                       "stage_map": STAGE_MAP, "custom_fields": CUSTOM,
                       "search_min_interval_s": 0, "portal_id": 4242,
                       "portal_timezone": "America/New_York"},
            "history": {"path": f"{name}.sqlite"},
            "report": {"formats": ["json"]},
        },
        origin=str(tmp_path / f"{name}.toml"), base_dir=tmp_path,
    )


def test_week_two_incremental_run_equals_a_fresh_full_audit(fake, tmp_path, monkeypatch) -> None:
    """Week 1 full; then a deal closes won and one is archived; week 2 (incremental, merged
    into the stored snapshot) finds exactly what a fresh full audit of week 2 finds."""
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    first = execute(_config(tmp_path, fake, "nightly"), out_dir=tmp_path / "out")
    assert {"101", "104"} <= set(first.result.violations["opportunity_id"])

    now = _iso(fake.now_ms())
    fake.edit("101", dealstage="closedwon", hs_is_closed="true", hs_is_closed_won="true",
              hs_v2_date_entered_closedwon=now)
    fake.archive("104")
    second = execute(_config(tmp_path, fake, "nightly"), out_dir=tmp_path / "out")
    assert second.snapshot.meta.incremental is True
    # full: pipelines + active and archived owners + 1 deals page; incremental: the same
    # metadata + 1 search page + 1 archived-deals page (no reconciliation: stored minutes ago)
    assert (first.snapshot.meta.api_calls, second.snapshot.meta.api_calls) == (4, 5)
    assert second.snapshot.meta.deleted_ids == ["104"]
    assert second.snapshot.meta.extra["merge"]["removed"] == 1
    opp = second.snapshot.opportunities.set_index("id")
    assert "104" not in opp.index and bool(opp.loc["101", "is_won"]) is True

    fresh = execute(_config(tmp_path, fake, "fresh"), out_dir=tmp_path / "out-full")
    assert fresh.snapshot.meta.incremental is False
    cols = ["fingerprint", "rule_code", "opportunity_id", "message"]
    got = second.result.violations[cols].sort_values("fingerprint").reset_index(drop=True)
    want = fresh.result.violations[cols].sort_values("fingerprint").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert "104" not in set(got["opportunity_id"])
    assert second.score == fresh.score
