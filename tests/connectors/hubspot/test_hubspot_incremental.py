"""Incremental pulls: search paged by hs_lastmodifieddate (then id), never by offset."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.streams import PriorPull, StreamState
from tests.connectors.hubspot.conftest import synthetic_deals

START_MS = 1_704_067_200_000  # 2024-01-01T00:00Z
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def test_search_pages_by_modification_time_never_by_offset(fake, make_connector) -> None:
    """23 deals, pairs sharing a modified time, cap lowered to 5: every request starts at
    offset 0 (never near the cap), each asks from the last time seen, and every deal modified
    since then is pulled once."""
    fake.deals = synthetic_deals(23, same_time=2)
    fake.search_cap = 5
    since = datetime.fromtimestamp((START_MS + 60_000) / 1000, UTC)  # skips deals 1000, 1001
    c = make_connector(search_result_cap=5, search_page_size=3, portal_id=1,
                       portal_timezone="UTC", track_archived=False, lookback_s=0)
    c._now = lambda: NOW
    snap = c.pull(since=since)
    expected = [str(1000 + i) for i in range(2, 23)]
    assert snap.opportunities["id"].tolist() == expected
    assert snap.meta.incremental is True

    searches = fake.calls("/crm/v3/objects/deals/search")
    assert all(r.status == 200 and "after" not in r.body for r in searches)
    cursors = [int(r.body["filterGroups"][0]["filters"][0]["value"]) for r in searches]
    assert cursors[0] == START_MS + 60_000
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)  # always forward
    body = searches[0].body
    assert body["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    assert body["filterGroups"][0]["filters"][0]["operator"] == "GTE"
    assert "hs_v2_date_entered_appointmentscheduled" in body["properties"]
    assert fake.calls("/crm/v3/objects/deals") == []


def test_more_deals_in_one_millisecond_than_a_page_are_paged_by_id(fake, make_connector) -> None:
    """The tie-break: a full page at one modification time is paged by hs_object_id."""
    fake.deals = synthetic_deals(7, same_time=7)
    c = make_connector(search_page_size=3, portal_id=1, portal_timezone="UTC",
                       track_archived=False, lookback_s=0)
    c._now = lambda: NOW
    snap = c.pull(since=datetime(2024, 1, 1, tzinfo=UTC))
    assert snap.opportunities["id"].tolist() == [str(1000 + i) for i in range(7)]
    ties = [r.body for r in fake.calls("/crm/v3/objects/deals/search")
            if r.body["sorts"][0]["propertyName"] == "hs_object_id"]
    filters = [b["filterGroups"][0]["filters"] for b in ties]
    assert [[(f["propertyName"], f["operator"], f["value"]) for f in fs] for fs in filters] == [
        [("hs_lastmodifieddate", "EQ", str(START_MS))],
        [("hs_lastmodifieddate", "EQ", str(START_MS)), ("hs_object_id", "GT", "1002")],
        [("hs_lastmodifieddate", "EQ", str(START_MS)), ("hs_object_id", "GT", "1005")],
    ]


def test_archived_deals_reported_and_history_batch_read(fake, make_connector) -> None:
    c = make_connector(stage_history="full", portal_id=4242, portal_timezone="America/New_York")
    since = datetime(2024, 3, 1, tzinfo=UTC)
    c._now = lambda: datetime(2024, 3, 6, tzinfo=UTC)
    c.prior = PriorPull(since, frozenset(), since, StreamState(since, since, since))
    snap = c.pull(since=since)
    # deals modified since March 1st minus the hour of lookback: 103 (03-05), 104 (03-01
    # 10:00), 105, 106, 107
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
    # pages of 2 from the last time seen (that deal is read again): 5 searches
    assert len(fake.calls("/crm/v3/objects/deals/search")) == 5
    assert sleeps == [pytest.approx(0.15)] * 4
