"""End to end on HubSpot's default pipeline, which has no discovery stage."""

from __future__ import annotations

from datetime import date

import pandas as pd

from auditor.config import parse_config
from auditor.engine import run_audit
from tests.connectors.hubspot.conftest import TOKEN
from tests.connectors.hubspot.fake_server import FakeHubSpot

DEFAULT_REACHED = {"contact", "qualification", "solution", "proposal", "negotiation",
                   "closed_won", "closed_lost"}


def _by_the_book_deal() -> dict:
    """contact → qualification → solution: follows the default pipeline, never saw discovery."""
    entered = {"appointmentscheduled": "2024-01-02T09:00:00Z",
               "qualifiedtobuy": "2024-01-09T09:00:00Z",
               "presentationscheduled": "2024-02-20T09:00:00Z"}
    props = {"dealname": "By the book", "dealstage": "presentationscheduled",
             "pipeline": "default", "amount": "900", "hubspot_owner_id": "501",
             "createdate": "2024-01-02T09:00:00Z", "hs_lastmodifieddate": "2024-03-08T09:00:00Z",
             "closedate": "2024-04-30T12:00:00Z", "notes_last_updated": "2024-03-08T09:00:00Z",
             "notes_next_activity_date": "2024-03-15T09:00:00Z", "hs_next_step": "Demo",
             "budget_confirmed": "yes"}
    props |= {f"hs_v2_date_entered_{k}": v for k, v in entered.items()}
    return {"id": "108", "properties": props}


def test_default_pipeline_has_no_skipped_discovery() -> None:
    with FakeHubSpot(token=TOKEN, pipelines="pipelines_default.json") as fake:
        fake.deals = [d for d in fake.deals if d["properties"]["pipeline"] == "default"]
        fake.deals.append(_by_the_book_deal())
        from connectors.hubspot.connector import HubSpotConnector
        from connectors.hubspot.options import HubSpotOptions

        opts = HubSpotOptions(host=fake.host, portal_id=4242, portal_timezone="America/New_York",
                              custom_fields={"budget": "budget_confirmed"})
        snap = HubSpotConnector(opts, env={"HUBSPOT_ACCESS_TOKEN": TOKEN},
                                sleep=lambda s: None).pull()
    assert snap.meta.reached_stages == DEFAULT_REACHED
    assert "discovery" not in snap.meta.reached_stages
    assert snap.meta.unmapped_stages == {}
    hist = snap.stage_history[snap.stage_history["opportunity_id"] == "108"]
    assert hist["stage"].astype(str).tolist() == ["contact", "qualification", "solution"]

    cfg = parse_config({"source": {"type": "hubspot"}}, origin="t.toml")
    res = run_audit(snap, cfg, as_of=date(2024, 3, 10))
    v = pd.concat([res.violations, res.process], ignore_index=True)  # 102 is closed
    assert not v["message"].str.contains("discovery", case=False).any()
    assert v[v["opportunity_id"] == "108"].empty  # a by-the-book deal is clean
    st01 = v[v["rule_code"] == "ST01"]
    # only real jumps over stages the default pipeline has
    assert dict(zip(st01["opportunity_id"], st01["message"], strict=True)) == {
        "102": "skipped negotiation (history jumps past them)",
        "107": "skipped solution, proposal (history jumps past them)"}
    assert {"102", "107"} <= set(v.loc[v["rule_code"] == "QL01", "opportunity_id"])

    # control: had the connector claimed discovery, the by-the-book deal would be flagged
    snap.meta.reached_stages = snap.meta.reached_stages | {"discovery"}
    snap.memo.clear()
    wrong = run_audit(snap, cfg, as_of=date(2024, 3, 10)).violations
    assert "108" in set(wrong.loc[wrong["rule_code"] == "ST01", "opportunity_id"])
