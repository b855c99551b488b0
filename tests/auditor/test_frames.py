"""Stored snapshots read back (auditor/history/frames.py): frames this tool wrote are used as
they are; anything else goes through the schema again."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from auditor.errors import SnapshotSchemaError
from auditor.history.frames import snapshot_from_blobs, snapshot_to_blobs
from auditor.snapshot import (
    OPPORTUNITY_SCHEMA,
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_owners,
    make_stage_history,
)


def _snap() -> Snapshot:
    opp = make_opportunities(pd.DataFrame({
        "id": ["A", "B", "C"],
        "name": ["Acme", "Globex", "Initech"],
        "stage": ["proposal", "closed_won", "closed_lost"],
        # B: the CRM says open while the stage says won (a contradiction the validator warns of)
        "is_closed": [None, False, None],
        "amount": [100.0, None, 5.0],
        "created_at": ["2026-01-02T10:00:00Z", None, "2025-12-01T00:00:00Z"],
        "budget": ["yes", None, "no"],  # a custom field: kept after the schema columns
    }))
    hist = make_stage_history(pd.DataFrame({
        "opportunity_id": ["A", "A", "B"], "stage": ["lead", "proposal", "closed_won"],
        "source_stage": ["Lead", "Proposal", "Won"],
        "entered_at": ["2026-01-02T10:00:00Z", "2026-02-01T10:00:00Z", "2026-03-01T10:00:00Z"],
    }))
    owners = make_owners(pd.DataFrame({"id": ["U1"], "name": ["Ann"], "active": [True]}))
    meta = SnapshotMeta("crm", "test", provided_fields=frozenset(OPPORTUNITY_SCHEMA),
                        has_stage_history=True)
    return Snapshot(opp, hist, owners, meta).validate()


def _load(blobs: dict) -> Snapshot:
    return snapshot_from_blobs(
        blobs["meta"], blobs["opportunities"], blobs["stage_history"], blobs["owners"]
    )


def test_a_stored_snapshot_reads_back_equal_with_its_lifecycle_warning() -> None:
    snap = _snap()
    back = _load(snapshot_to_blobs(snap))
    pd.testing.assert_frame_equal(back.opportunities, snap.opportunities)
    pd.testing.assert_frame_equal(back.stage_history, snap.stage_history)
    pd.testing.assert_frame_equal(back.owners, snap.owners)
    assert list(back.opportunities.columns)[-1] == "budget"
    assert back.opportunities.set_index("id").loc["B", "is_open"]
    assert [w for w in back.meta.warnings if "contradict" in w] == [
        w for w in snap.meta.warnings if "contradict" in w
    ] != []


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def test_frames_of_another_shape_go_through_the_schema_again() -> None:
    blobs = snapshot_to_blobs(_snap())
    # as an older version might have stored it: text as plain objects, blanks, no lifecycle
    old = pd.DataFrame({
        "id": ["A", "B"], "name": ["Acme", "  "], "stage": ["proposal", "closed_won"],
        "created_at": ["2026-01-02T10:00:00Z", "2026-01-03T10:00:00Z"],
    })
    back = _load({**blobs, "opportunities": _parquet(old)})
    opp = back.opportunities
    for col, dtype in OPPORTUNITY_SCHEMA.items():
        assert opp[col].dtype == dtype, col
    assert opp["name"].isna().tolist() == [False, True]  # a blank is missing, never ""
    assert opp["is_closed"].tolist() == [False, True]  # lifecycle derived from the stage


def test_duplicate_ids_in_frames_of_another_shape_are_still_refused() -> None:
    blobs = snapshot_to_blobs(_snap())
    old = pd.DataFrame({"id": ["A", "A"], "stage": ["proposal", "lead"]})
    with pytest.raises(SnapshotSchemaError, match="duplicate ids"):
        _load({**blobs, "opportunities": _parquet(old)})


def test_history_stored_as_text_by_an_older_version_loads_dictionary_encoded() -> None:
    snap = _snap()
    blobs = snapshot_to_blobs(snap)
    old = snap.stage_history.copy()
    old["source_stage"] = old["source_stage"].astype(object).astype(pd.StringDtype("pyarrow"))
    back = _load({**blobs, "stage_history": _parquet(old)})
    assert isinstance(back.stage_history["source_stage"].dtype, pd.CategoricalDtype)
    pd.testing.assert_frame_equal(back.stage_history, snap.stage_history)
    assert back.stage_history["source_stage"].tolist() == ["Lead", "Proposal", "Won"]


def test_dictionary_encoded_history_reads_back_as_text_where_text_is_expected() -> None:
    # a reader of a store this version wrote, that expects text (an older version re-conforms
    # any frame whose dtypes differ, which casts the categorical back to string[pyarrow])
    stored = io.BytesIO(snapshot_to_blobs(_snap())["stage_history"])
    text = pd.read_parquet(stored)["source_stage"].astype(pd.StringDtype("pyarrow"))
    assert text.tolist() == ["Lead", "Proposal", "Won"]
