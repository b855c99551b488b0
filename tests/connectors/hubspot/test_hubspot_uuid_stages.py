"""Custom pipeline stage ids can be UUIDs (API path): stage, history and stage age resolve."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from auditor.snapshot import make_owners
from auditor.stages import StageMap
from connectors.hubspot.fields import FieldOptions
from connectors.hubspot.normalise import PullContext, RawDeals, normalise
from connectors.hubspot.pipelines import catalogue_from_pipelines, map_catalogue

PIPELINES = Path(__file__).parents[1] / "exports" / "data" / "hubspot_ui" / "pipelines.json"
QUALIFIED = "baedc188-ba76-4a41-8723-5bb99fe7c5bf"
PROPOSAL = "0f3a6c1e-8d2b-4c5e-9a71-2b6d4e8f1a90"


def test_uuid_stage_ids_through_the_api_path() -> None:
    cat = catalogue_from_pipelines(json.loads(PIPELINES.read_text()), "pipelines")
    stage_map = StageMap.build("hubspot", {QUALIFIED: "qualification", PROPOSAL: "proposal"},
                               name="source.stage_map")
    cat = map_catalogue(cat, stage_map)
    # as the API returns them: dealstage holds the id, date-entered properties carry it
    props = pd.DataFrame({
        "id": ["1", "2"],
        "dealstage": [QUALIFIED, PROPOSAL],
        "pipeline": ["88215044", "88215044"],
        f"hs_v2_date_entered_{QUALIFIED}": ["2024-03-01T00:00:00Z", "2024-04-01T00:00:00Z"],
        f"hs_v2_date_entered_{PROPOSAL}": [None, "2024-06-01T00:00:00Z"],
    })
    raw = RawDeals(props=props, present=frozenset(props.columns) - {"id"})
    ctx = PullContext(source="hs", source_type="hubspot", portal_id=None, portal_tz="UTC")
    snap = normalise(raw, cat, make_owners(), FieldOptions(), stage_map, ctx)
    opp = snap.opportunities.set_index("id")
    assert opp["stage"].astype(str).to_dict() == {"1": "qualification", "2": "proposal"}
    assert opp["source_stage"].to_dict() == {"1": "Qualified", "2": "Proposal"}
    assert opp["stage_entered_at"].to_dict() == {
        "1": pd.Timestamp("2024-03-01", tz="UTC"), "2": pd.Timestamp("2024-06-01", tz="UTC")}
    assert snap.meta.unmapped_stages == {}
    h = snap.stage_history
    assert h[h["opportunity_id"] == "2"]["stage"].astype(str).tolist() == [
        "qualification", "proposal"]
