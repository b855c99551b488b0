"""HubSpot API connector against the local fake: exact Snapshot, paging, cost, 414 splitting."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from auditor.errors import ConfigError
from auditor.snapshot import ApiUsage
from connectors.registry import connector_class
from tests.connectors.hubspot.conftest import expected_frames, synthetic_deals

DEFAULT_STAGES = {"contact", "qualification", "solution", "proposal", "negotiation",
                  "closed_won", "closed_lost"}


def test_registry_serves_the_connector() -> None:
    assert connector_class("hubspot").type_name == "hubspot"
    assert connector_class("hubspot_export").type_name == "hubspot_export"


def test_snapshot_exact(fake, make_connector) -> None:
    snap = make_connector(page_size=3).pull()
    exp = expected_frames()
    assert_frame_equal(snap.opportunities, exp["opportunities"])
    assert_frame_equal(snap.stage_history, exp["stage_history"])
    assert_frame_equal(snap.owners, exp["owners"])
    m = snap.meta
    assert (m.source, m.source_type, m.loaded_rows) == ("hubspot", "hubspot", 7)
    assert m.incremental is False
    assert m.has_stage_history is True
    assert m.reached_stages == DEFAULT_STAGES | {"discovery"}
    assert m.extra["reached_stages_by_pipeline"] == {
        "Enterprise": ["contact", "discovery", "solution", "proposal", "negotiation",
                       "closed_won", "closed_lost"],
        "Sales Pipeline": ["contact", "qualification", "solution", "proposal", "negotiation",
                           "closed_won", "closed_lost"],
    }
    assert m.unmapped_stages == {"On hold": 1}
    assert m.warnings == ["stage 'On hold' is not in the stage map; 1 deal(s) are in it "
                          "(add it to source.stage_map)"]
    # every mapped column the fake portal defines, but no close-date history in this mode
    assert m.provided_fields == {
        "id", "source", "url", "name", "owner_id", "pipeline", "stage", "source_stage",
        "is_closed", "is_won", "amount", "currency", "probability", "forecast_category",
        "close_date", "created_at", "updated_at", "stage_entered_at", "last_activity_at",
        "next_step", "next_step_due", "loss_reason", "lead_source", "budget"}
    # pipelines, account info (no portal_id configured), 2 owner listings, 3 pages of 3 deals
    assert m.api_calls == 7
    # records: 2 pipelines, 2 active + 1 archived owner, 7 deals; the fake portal sends no
    # X-HubSpot-RateLimit-* headers here (test_hubspot_faults has them)
    assert m.api_usage == ApiUsage(
        calls=7,
        calls_by_endpoint={
            "GET /crm/v3/pipelines/deals": 1, "GET /account-info/v3/details": 1,
            "GET /crm/v3/owners": 2, "GET /crm/v3/objects/deals": 3},
        transient_failures=0,
        records_read={"pipelines": 2, "owners": 3, "deals": 7},
        limits={},
        logins=0,
    )


def test_requests_page_with_after_and_ask_for_date_entered_properties(fake, make_connector) -> None:
    make_connector(page_size=3).pull()
    pages = fake.calls("/crm/v3/objects/deals")
    assert [p.query.get("after") for p in pages] == [None, ["3"], ["6"]]
    assert all(p.query["limit"] == ["3"] for p in pages)
    assert all("archived" not in p.query for p in pages)
    props = pages[0].query["properties"]
    stage_ids = [s["id"] for p in fake.pipelines["results"] for s in p["stages"]]
    assert [p for p in props if p.startswith("hs_v2_date_entered_")] == [
        f"hs_v2_date_entered_{i}" for i in stage_ids]
    assert {"dealstage", "pipeline", "closed_lost_reason", "notes_last_updated",
            "notes_next_activity_date", "hs_next_step", "budget_confirmed"} <= set(props)
    assert "propertiesWithHistory" not in pages[0].query
    owners = fake.calls("/crm/v3/owners/")
    assert [o.query.get("archived") for o in owners] == [None, ["true"]]
    assert all(r.headers["authorization"] == f"Bearer {fake.token}" for r in fake.requests)


def test_full_history_mode(fake, make_connector) -> None:
    snap = make_connector(stage_history="full").pull()
    pages = fake.calls("/crm/v3/objects/deals")
    assert len(pages) == 1 and pages[0].query["limit"] == ["50"]
    assert pages[0].query["propertiesWithHistory"] == ["dealstage", "closedate"]
    opp = snap.opportunities.set_index("id")
    assert opp["close_date_changes"].to_dict() == {
        "101": 1, "102": 2, "103": 0, "104": 0, "105": 0, "106": 2, "107": 0}
    assert "close_date_changes" in snap.meta.provided_fields
    # 102 has a repeated consecutive stage entry: collapsed, so the path equals date-entered
    assert_frame_equal(snap.stage_history, expected_frames()["stage_history"])
    exp = expected_frames()["opportunities"]
    assert_frame_equal(snap.opportunities.drop(columns="close_date_changes"),
                       exp.drop(columns="close_date_changes"))


def test_portal_id_and_timezone_from_config_skip_account_info(fake, make_connector) -> None:
    snap = make_connector(portal_id=77, portal_timezone="UTC").pull()
    assert fake.calls("/account-info/v3/details") == []
    opp = snap.opportunities.set_index("id")
    assert opp.loc["101", "url"] == "https://app.hubspot.com/contacts/77/record/0-3/101"
    # 2024-04-01T03:30Z is April 1st in UTC, March 31st in New York
    assert opp.loc["101", "close_date"] == pd.Timestamp("2024-04-01")


def test_closedate_uses_portal_time_zone(fake, make_connector) -> None:
    snap = make_connector(portal_timezone="America/New_York", portal_id=1).pull()
    assert snap.opportunities.set_index("id").loc["101", "close_date"] == pd.Timestamp("2024-03-31")


def test_custom_property_names_and_missing_properties(fake, make_connector) -> None:
    # a portal without the next-step property; loss reason in a custom property
    fake.defined_properties -= {"hs_next_step"}
    for d in fake.deals:
        d["properties"]["lost_why"] = "Price" if d["id"] == "103" else None
    fake.defined_properties |= {"lost_why"}
    snap = make_connector(loss_reason_property="lost_why", portal_id=1,
                          portal_timezone="UTC").pull()
    opp = snap.opportunities.set_index("id")
    assert opp["loss_reason"].dropna().to_dict() == {"103": "Price"}
    assert "next_step" not in snap.meta.provided_fields
    assert opp["next_step"].isna().all()
    assert "loss_reason" in snap.meta.provided_fields


@pytest.mark.parametrize("n", [1, 100, 101, 250])
@pytest.mark.parametrize("mode,per_page", [("date_entered", 100), ("full", 50)])
def test_api_cost_formula(fake, make_connector, n: int, mode: str, per_page: int) -> None:
    fake.deals = synthetic_deals(n)
    snap = make_connector(stage_history=mode, portal_id=1, portal_timezone="UTC").pull()
    assert len(snap.opportunities) == n
    list_calls = math.ceil(n / per_page)
    owner_pages = 1 + 1  # active and archived owners, one page each here
    assert len(fake.calls("/crm/v3/objects/deals")) == list_calls
    assert snap.meta.api_calls == list_calls + 1 + owner_pages
    assert snap.meta.api_calls == len(fake.requests)


def test_long_property_list_is_split_into_passes(fake, make_connector) -> None:
    fake.max_url_length = 700  # the fake answers 414 above this
    snap = make_connector(page_size=3, portal_id=4242, portal_timezone="America/New_York").pull()
    exp = expected_frames()
    assert_frame_equal(snap.opportunities, exp["opportunities"])
    assert_frame_equal(snap.stage_history, exp["stage_history"])
    deals = fake.calls("/crm/v3/objects/deals")
    ok = [r for r in deals if r.status == 200]
    assert all(r.url_length <= 700 for r in ok)
    assert any(r.status == 414 for r in deals)
    # the successful passes together asked for every property exactly once per page
    first_pages = [r for r in ok if "after" not in r.query]
    asked = [p for r in first_pages for p in r.query["properties"]]
    assert len(asked) == len(set(asked)) == len(deals[0].query["properties"])


def test_url_budget_splits_up_front_without_414(fake, make_connector) -> None:
    fake.max_url_length = 800
    snap = make_connector(max_url_length=700, portal_id=4242,
                          portal_timezone="America/New_York").pull()
    deals = fake.calls("/crm/v3/objects/deals")
    assert all(r.status == 200 and r.url_length <= 800 for r in deals)
    assert len(deals) >= 2  # one list call per property pass (7 deals fit one page)
    assert_frame_equal(snap.opportunities, expected_frames()["opportunities"])


def test_deal_with_every_property_null(fake, make_connector) -> None:
    fake.deals.append({"id": "109", "properties": {}})
    snap = make_connector(portal_id=1, portal_timezone="UTC").pull()
    row = snap.opportunities.set_index("id").loc["109"]
    assert row[["stage", "source_stage", "pipeline", "amount", "stage_entered_at"]].isna().all()
    # no flag and no stage: open (auditor/lifecycle.py, step 3)
    assert (row["is_open"], row["is_closed"], row["is_won"]) == (True, False, False)
    assert snap.meta.unmapped_stages == {"On hold": 1}  # a missing stage is not "unmapped"
    assert "109" not in set(snap.stage_history["opportunity_id"])


def test_missing_token_env_is_a_config_error(fake) -> None:
    from connectors.hubspot.connector import HubSpotConnector
    from connectors.hubspot.options import HubSpotOptions

    c = HubSpotConnector(HubSpotOptions(host=fake.host, access_token_env="HS_TOKEN"), env={})
    with pytest.raises(ConfigError, match="HS_TOKEN"):
        c.pull()
    assert fake.requests == []


def test_check_reports_unmapped_pipeline_stages(fake, make_connector) -> None:
    facts = make_connector().check()
    assert facts["pipelines"] == 2 and facts["stages"] == 15
    assert facts["unmapped_stages"] == ["On hold (id 1008, pipeline Enterprise)"]
    assert facts["api_calls"] == 2
