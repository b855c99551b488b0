"""Compact snapshot storage: each frame as Parquet bytes (zstd inside), meta as JSON.

Parquet keeps the dtypes (string[pyarrow], tz-aware timestamps, the ordered stage categorical)
and compresses column by column, which beats zlib over pickles for these frames. A frame read
back with exactly the schema's columns and dtypes is one this tool conformed and validated
before storing it: it is used as it is (no re-casting, no re-scanning of every value; seconds
at a million deals). Any other frame (a store written by an older version) is put through the
Snapshot schema again.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import pandas as pd

from auditor.derived import trim_memory
from auditor.snapshot import (
    CAT,
    OPPORTUNITY_SCHEMA,
    OWNER_SCHEMA,
    STAGE_HISTORY_SCHEMA,
    STR,
    Snapshot,
    SnapshotMeta,
    as_category,
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


def _as_stored(df: pd.DataFrame, schema: dict[str, Any]) -> pd.DataFrame | None:
    """``df`` when it already has every schema column with its exact dtype (schema columns
    first, extras after, a RangeIndex), else None."""
    if not isinstance(df.index, pd.RangeIndex) or df.index.start != 0:
        return None
    for col, dtype in schema.items():
        if col in df.columns and dtype == CAT and df[col].dtype == STR:
            # stored as text by a version before the column was dictionary-encoded: the text
            # was conformed then, only the encoding differs
            df[col] = as_category(df[col])
        if col not in df.columns or df[col].dtype != dtype:
            return None
    order = [*schema, *(c for c in df.columns if c not in schema)]
    return df if list(df.columns) == order else df[order]


def snapshot_from_blobs(
    meta: str, opportunities: bytes, stage_history: bytes, owners: bytes
) -> Snapshot:
    frames = []
    trusted = True
    for data, schema, make in (
        (opportunities, OPPORTUNITY_SCHEMA, make_opportunities),
        (stage_history, STAGE_HISTORY_SCHEMA, make_stage_history),
        (owners, OWNER_SCHEMA, make_owners),
    ):
        df = frame_from_bytes(data)
        stored = _as_stored(df, schema)
        trusted &= stored is not None
        frames.append(stored if stored is not None else make(df))
    snap = Snapshot(frames[0], frames[1], frames[2], meta_from_json(meta))
    # the lifecycle is derived again (cheap; it restores the contradiction warning)
    snap.validate(stored=trusted)
    # decoding the Parquet leaves about 0.1 GiB of freed buffers (at a million deals) in the
    # allocators; every later phase's peak would count them
    trim_memory()
    return snap
