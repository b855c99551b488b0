"""Incremental pulls: search by hs_lastmodifieddate, sliced under the result cap."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from auditor.errors import ConnectorError
from tests.connectors.hubspot.conftest import synthetic_deals

START_MS = 1_704_067_200_000  # 2024-01-01T00:00Z
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def _window(body: dict) -> tuple[int, int]:
    f = {x["operator"]: int(x["value"]) for x in body["filterGroups"][0]["filters"]}
    return f["GTE"], f["LT"]


def test_window_over_the_cap_is_sliced_and_every_deal_pulled_once(fake, make_connector) -> None:
    # 23 deals, pairs sharing a modified time; cap lowered to 5 in fake and connector
    fake.deals = synthetic_deals(23, same_time=2)
    fake.search_cap = 5
    since = datetime.fromtimestamp((START_MS + 60_000) / 1000, UTC)  # skips deals 1000, 1001
    c = make_connector(search_result_cap=5, search_page_size=2, portal_id=1,
                       portal_timezone="UTC", track_archived=False)
    c._now = lambda: NOW
    snap = c.pull(since=since)
    expected = [str(1000 + i) for i in range(2, 23)]
    assert snap.opportunities["id"].tolist() == expected
    assert snap.meta.incremental is True

    searches = fake.calls("/crm/v3/objects/deals/search")
    assert all(r.status == 200 for r in searches)
    assert all(int(r.body.get("after") or 0) < 5 for r in searches)
    # slices that were kept (total under the cap) are disjoint and their results add up
    kept: dict[tuple[int, int], list[str]] = {}
    for r in searches:
        if r.response["total"] <= 5:
            kept.setdefault(_window(r.body), []).extend(x["id"] for x in r.response["results"])
    pulled = [i for ids in kept.values() for i in ids]
    assert sorted(pulled) == expected  # none twice, none missing
    assert len(kept) > 1
    windows = sorted(kept)
    assert windows[0][0] == START_MS + 60_000 and windows[-1][1] == int(NOW.timestamp() * 1000)
    assert all(a[1] == b[0] for a, b in zip(windows, windows[1:], strict=False))
    # search asks for the same properties as the list API, sorted by modification time
    body = searches[0].body
    assert body["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    assert "hs_v2_date_entered_appointmentscheduled" in body["properties"]
    assert fake.calls("/crm/v3/objects/deals") == []


def test_more_deals_in_one_millisecond_than_the_cap_is_a_clear_error(fake, make_connector) -> None:
    fake.deals = synthetic_deals(6, same_time=6)
    fake.search_cap = 5
    c = make_connector(search_result_cap=5, portal_id=1, portal_timezone="UTC",
                       track_archived=False)
    c._now = lambda: NOW
    with pytest.raises(ConnectorError, match="within one millisecond"):
        c.pull(since=datetime(2024, 1, 1, tzinfo=UTC))


def test_archived_deals_reported_and_history_batch_read(fake, make_connector) -> None:
    c = make_connector(stage_history="full", portal_id=4242, portal_timezone="America/New_York")
    c._now = lambda: NOW
    snap = c.pull(since=datetime(2024, 3, 1, tzinfo=UTC))
    # deals modified since March 1st: 103 (03-05), 104 (03-01 10:00), 105, 106, 107
    assert snap.opportunities["id"].tolist() == ["103", "104", "105", "106", "107"]
    assert snap.meta.deleted_ids == ["190"]  # 191 was archived before `since`
    archived = fake.calls("/crm/v3/objects/deals")
    assert [r.query["archived"] for r in archived] == [["true"]]
    batch = fake.calls("/crm/v3/objects/deals/batch/read")
    assert len(batch) == 1
    assert batch[0].body["propertiesWithHistory"] == ["dealstage", "closedate"]
    opp = snap.opportunities.set_index("id")
    assert opp["close_date_changes"].to_dict() == {"103": 0, "104": 0, "105": 0, "106": 2,
                                                   "107": 0}


def test_search_is_spaced_for_its_own_rate_limit(fake, make_connector, sleeps) -> None:
    fake.deals = synthetic_deals(5)
    c = make_connector(search_page_size=2, search_min_interval_s=0.25, portal_id=1,
                       portal_timezone="UTC", track_archived=False)
    c._now = lambda: NOW
    ticks = iter(range(100))
    c._clock = lambda: next(ticks) * 0.1  # 0.1 s pass between clock reads
    c.pull(since=datetime(2024, 1, 1, tzinfo=UTC))
    assert len(fake.calls("/crm/v3/objects/deals/search")) == 3
    assert sleeps == [pytest.approx(0.15), pytest.approx(0.15)]
