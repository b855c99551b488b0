"""Deal pipelines → a stage catalogue: one row per stage with its label, metadata and common stage.

The catalogue is how both paths (API and UI export) resolve a deal's ``dealstage`` value, which
is a stage id in the API and a stage label in exports, to a label, a common stage and the
closed / won facts HubSpot's stage metadata carries.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from auditor.errors import SourceDataError
from auditor.snapshot import STR
from auditor.stages import STAGE_DTYPE, StageMap
from connectors.hubspot.fields import BOOLEANS

CATALOGUE_COLUMNS = {
    "pipeline_id": STR,
    "pipeline_label": STR,
    "stage_id": STR,
    "stage_label": STR,
    "display_order": "Int64",
    "is_closed": "boolean",
    "probability": "Float64",
}


def _fold(s: pd.Series) -> pd.Series:
    return s.astype(STR).str.strip().str.casefold()


def catalogue_from_pipelines(payload: dict[str, Any], where: str) -> pd.DataFrame:
    """Parse a ``GET /crm/v3/pipelines/deals`` response (root key ``results``)."""
    results = payload.get("results")
    if not isinstance(results, list):
        raise SourceDataError(f"{where}: expected a JSON object with a `results` list of pipelines")
    rows = []
    for p in results:
        for st in p.get("stages") or []:
            meta = st.get("metadata") or {}
            rows.append({
                "pipeline_id": p.get("id"),
                "pipeline_label": p.get("label"),
                "stage_id": st.get("id"),
                "stage_label": st.get("label"),
                "display_order": st.get("displayOrder"),
                "is_closed": meta.get("isClosed"),
                "probability": meta.get("probability"),
            })
    df = pd.DataFrame(rows, columns=list(CATALOGUE_COLUMNS))
    closed = df["is_closed"].astype(STR).str.strip().str.casefold().map(BOOLEANS)
    df["is_closed"] = closed.astype("boolean")
    df["probability"] = pd.to_numeric(df["probability"].astype(STR), errors="coerce")
    df = df.astype(CATALOGUE_COLUMNS)
    if df["stage_id"].isna().any():
        raise SourceDataError(f"{where}: a pipeline stage has no `id`")
    return df.drop_duplicates("stage_id").reset_index(drop=True)


def catalogue_from_labels(pairs: pd.DataFrame) -> pd.DataFrame:
    """A catalogue known only by labels (UI export): ``pairs`` has pipeline_label, stage_label.

    Stage ids are synthetic (``<pipeline>::<stage>``); metadata is unknown (NA).
    """
    df = pairs[["pipeline_label", "stage_label"]].astype(STR).drop_duplicates()
    df = df.reset_index(drop=True)
    out = pd.DataFrame({
        "pipeline_id": df["pipeline_label"],
        "pipeline_label": df["pipeline_label"],
        "stage_id": df["pipeline_label"].fillna("") + "::" + df["stage_label"],
        "stage_label": df["stage_label"],
        "display_order": pd.Series(pd.NA, index=df.index),
        "is_closed": pd.Series(pd.NA, index=df.index),
        "probability": pd.Series(pd.NA, index=df.index),
    })
    return out.astype(CATALOGUE_COLUMNS)


def map_catalogue(cat: pd.DataFrame, stage_map: StageMap) -> pd.DataFrame:
    """Add the common stage of each catalogue stage: by stage id first, then by label."""
    out = cat.copy()
    common = [
        (stage_map.lookup(i) if pd.notna(i) else None)
        or (stage_map.lookup(label) if pd.notna(label) else None)
        for i, label in zip(out["stage_id"], out["stage_label"], strict=True)
    ]  # one lookup per pipeline stage, not per deal
    out["common"] = pd.Series(common, index=out.index, dtype=object).astype(STAGE_DTYPE)
    return out


def resolve_stages(
    cat: pd.DataFrame, stage: pd.Series, pipeline: pd.Series
) -> pd.Series:
    """Catalogue row position (Int64, NA = not in the catalogue) for each deal.

    Tries the value as a stage id, then as a label within the deal's pipeline (id or label),
    then as a label anywhere. Lookups run over dictionaries, one ``map`` per attempt.
    """
    pos = pd.Series(range(len(cat)), index=cat.index)
    by_id = dict(zip(cat["stage_id"], pos, strict=True))
    label = _fold(cat["stage_label"])
    by_pipe_label: dict[str, int] = {}
    for key_col in ("pipeline_id", "pipeline_label"):
        keys = _fold(cat[key_col]) + "\x00" + label
        by_pipe_label.update({k: p for k, p in zip(keys, pos, strict=True) if pd.notna(k)})
    by_label = {k: p for k, p in zip(label[::-1], pos[::-1], strict=True) if pd.notna(k)}

    value = stage.astype(STR)
    folded = _fold(value)
    found = value.map(by_id)
    found = found.fillna((_fold(pipeline) + "\x00" + folded).map(by_pipe_label))
    found = found.fillna(folded.map(by_label))
    return found.astype("Int64")
