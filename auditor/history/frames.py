"""Compact snapshot storage: each frame as Parquet bytes (zstd inside), meta as JSON.

Parquet keeps the dtypes (string[pyarrow], tz-aware timestamps, the ordered stage categorical)
and compresses column by column, which beats zlib over pickles for these frames. Frames read
back are put through the Snapshot schema again, so a store written by an older version still
yields schema-conformant frames.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import pandas as pd

from auditor.snapshot import (
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_owners,
    make_stage_history,
)

FORMAT = "parquet-zstd/1"


def frame_to_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, engine="pyarrow", compression="zstd", index=False)
    return buf.getvalue()


def frame_from_bytes(data: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(data), engine="pyarrow")


def meta_to_json(meta: SnapshotMeta) -> str:
    """The meta facts a stored snapshot needs to be audited again (not the pull's costs)."""
    return json.dumps(
        {
            "source": meta.source,
            "source_type": meta.source_type,
            "pulled_at": meta.pulled_at.isoformat(),
            "provided_fields": sorted(meta.provided_fields),
            "has_stage_history": meta.has_stage_history,
            "reached_stages": sorted(meta.reached_stages),
            "unmapped_stages": meta.unmapped_stages,
            "stage_expectations": meta.stage_expectations,
            "stream_state": meta.stream_state,
        }
    )


def meta_from_json(text: str) -> SnapshotMeta:
    d: dict[str, Any] = json.loads(text)
    return SnapshotMeta(
        source=d["source"],
        source_type=d["source_type"],
        pulled_at=datetime.fromisoformat(d["pulled_at"]),
        provided_fields=frozenset(d["provided_fields"]),
        has_stage_history=bool(d["has_stage_history"]),
        reached_stages=frozenset(d["reached_stages"]),
        unmapped_stages=dict(d.get("unmapped_stages", {})),
        stage_expectations=dict(d.get("stage_expectations", {})),
        stream_state=dict(d.get("stream_state") or {}),
    )


def snapshot_to_blobs(snap: Snapshot) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "meta": meta_to_json(snap.meta),
        "opportunities": frame_to_bytes(snap.opportunities),
        "stage_history": frame_to_bytes(snap.stage_history),
        "owners": frame_to_bytes(snap.owners),
    }


def snapshot_from_blobs(
    meta: str, opportunities: bytes, stage_history: bytes, owners: bytes
) -> Snapshot:
    return Snapshot(
        make_opportunities(frame_from_bytes(opportunities)),
        make_stage_history(frame_from_bytes(stage_history)),
        make_owners(frame_from_bytes(owners)),
        meta_from_json(meta),
    ).validate()
