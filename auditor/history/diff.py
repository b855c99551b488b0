"""What changed since the last successful run of the same source, and the score trend."""

from __future__ import annotations

from typing import Any

import pandas as pd

from auditor.history.store import STORED_VIOLATION_COLUMNS


def violation_dicts(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready dicts (NA → None, categoricals → str) of the stored violation columns."""
    if not len(df):
        return []
    cols = [c for c in STORED_VIOLATION_COLUMNS if c in df.columns]
    out = df[cols].astype(object)
    out = out.where(out.notna(), None)
    if "stage" in out.columns:
        out["stage"] = out["stage"].map(lambda s: None if s is None else str(s))
    if "amount" in out.columns:
        out["amount"] = out["amount"].map(lambda a: None if a is None else float(a))
    return out.to_dict(orient="records")


def diff_runs(
    current: pd.DataFrame,
    previous: pd.DataFrame | None,
    previous_run: dict[str, Any] | None,
    trend: list[dict[str, Any]],
) -> dict[str, Any]:
    """The ``run.history`` dict the reports render (see docs/history.md).

    Findings are matched by fingerprint (source, rule, record). ``execute`` only calls this
    when a previous successful run exists; without one the result has ``previous_run`` None and
    zero counts.
    """
    base = {
        "previous_run": None,
        "new": 0,
        "resolved": 0,
        "persisting": 0,
        "new_items": [],
        "resolved_items": [],
        "trend": trend,
    }
    if previous_run is None or previous is None:
        return base
    cur_fp = current["fingerprint"].astype(str)
    prev_fp = previous["fingerprint"].astype(str)
    is_new = ~cur_fp.isin(set(prev_fp))
    is_resolved = ~prev_fp.isin(set(cur_fp))
    base.update(
        previous_run={
            "id": previous_run["id"],
            "finished_at": previous_run["finished_at"],
            "score": previous_run["score"],
        },
        new=int(is_new.sum()),
        resolved=int(is_resolved.sum()),
        persisting=int((~is_new).sum()),
        new_items=violation_dicts(current[is_new.to_numpy()]),
        resolved_items=violation_dicts(previous[is_resolved.to_numpy()]),
    )
    return base
