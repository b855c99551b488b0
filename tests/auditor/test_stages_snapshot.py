"""Stage model, stage maps and the Snapshot schema / validator."""

from __future__ import annotations

import pandas as pd
import pytest

from auditor.errors import ConfigError, SnapshotSchemaError
from auditor.snapshot import (
    OPPORTUNITY_SCHEMA,
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_owners,
    make_stage_history,
)
from auditor.stages import STAGES, StageMap


def test_stage_order_is_the_reference_process() -> None:
    assert STAGES == (
        "lead",
        "contact",
        "qualification",
        "discovery",
        "solution",
        "proposal",
        "negotiation",
        "closed_won",
        "closed_lost",
        "handoff",
    )


def test_salesforce_default_map_and_unmapped_counts() -> None:
    sm = StageMap.build("salesforce", {"Contracting": "negotiation"})
    src = pd.Series(
        [
            "Prospecting",
            "needs  analysis",
            "Perception Analysis",
            "Contracting",
            "Legal",
            "Legal",
            None,
        ],
        dtype="string",
    )
    mapped, unmapped = sm.map_series(src)
    assert mapped.tolist()[:4] == ["contact", "discovery", "solution", "negotiation"]
    assert mapped.isna().tolist() == [False, False, False, False, True, True, True]
    assert unmapped == {"Legal": 2}
    assert mapped.dtype.ordered


def test_hubspot_default_map_has_no_discovery() -> None:
    sm = StageMap.build("hubspot")
    assert "discovery" not in sm.reached
    assert sm.lookup("qualifiedtobuy") == "qualification"
    assert sm.lookup("Decision maker bought-in") == "proposal"


def test_map_to_unknown_common_stage_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"'Demo' maps to unknown common stage 'demo'"):
        StageMap({"Demo": "demo"}, name="source.stage_map")


def _snap(opp: pd.DataFrame) -> Snapshot:
    return Snapshot(opp, make_stage_history(), make_owners(), SnapshotMeta("t", "test"))


def test_make_opportunities_casts_and_turns_blanks_into_na() -> None:
    opp = make_opportunities(
        pd.DataFrame(
            {
                "id": ["1", "2"],
                "name": ["Deal", "   "],
                "stage": ["proposal", None],
                "amount": [10.5, None],
                "close_date": ["2024-03-31", None],
                "created_at": ["2024-01-02T03:04:05.000+0000", "2024-01-02T23:00:00-0500"],
            }
        )
    )
    assert list(opp.columns[: len(OPPORTUNITY_SCHEMA)]) == list(OPPORTUNITY_SCHEMA)
    assert opp["name"].isna().tolist() == [False, True]
    assert str(opp["created_at"].dtype) == "datetime64[us, UTC]"
    assert opp["created_at"][1] == pd.Timestamp("2024-01-03T04:00:00Z")
    assert opp["close_date"][0] == pd.Timestamp("2024-03-31")
    assert opp["amount"].isna().tolist() == [False, True]
    _snap(opp).validate()


def test_validator_lists_every_problem() -> None:
    opp = make_opportunities(pd.DataFrame({"id": ["1", "1", None], "probability": [0.5, 2, 0]}))
    opp["amount"] = opp["amount"].astype("float64")
    with pytest.raises(SnapshotSchemaError) as e:
        _snap(opp).validate()
    msg = str(e.value)
    assert "opportunities.amount: dtype float64, expected Float64" in msg
    assert "opportunities.id: 1 missing ids" in msg
    assert "1 duplicate ids (e.g. 1)" in msg
    assert "probability: values must be within 0..1" in msg


def test_extra_columns_are_kept_after_schema_columns() -> None:
    opp = make_opportunities(pd.DataFrame({"id": ["1"], "budget": ["yes"]}))
    assert opp.columns[-1] == "budget"
