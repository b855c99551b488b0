"""What changed since the last successful run of the same source, and the score trend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from auditor.history.findings import STORED_VIOLATION_COLUMNS
from auditor.na import frame_na_to_none
from auditor.results import HistoryDiff, PreviousRun, TrendPoint


def violation_dicts(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready dicts (NA → None, categoricals → str) of the stored violation columns."""
    if not len(df):
        return []
    cols = [c for c in STORED_VIOLATION_COLUMNS if c in df.columns]
    out = frame_na_to_none(df[cols])
    if "stage" in out.columns:
        out["stage"] = out["stage"].map(lambda s: None if s is None else str(s))
    if "amount" in out.columns:
        out["amount"] = out["amount"].map(lambda a: None if a is None else float(a))
    return out.to_dict(orient="records")


def diff_runs(
    current: pd.DataFrame,
    previous_fingerprints: pd.Series,
    previous_rows: Callable[[list[str]], pd.DataFrame],
    previous_run: dict[str, Any],
    trend: list[TrendPoint],
) -> HistoryDiff:
    """The ``run.history`` the reports render (see docs/history.md).

    Findings are matched by fingerprint (source, rule, record). Only the fingerprints of the
    previous run are read in full; ``previous_rows(fingerprints)`` fetches the stored rows of
    the resolved ones, which the reports list.
    """
    cur_fp = _arrow(current["fingerprint"])
    prev_fp = _arrow(previous_fingerprints)
    is_new = pd.Series(~_is_in(cur_fp, prev_fp), index=current.index)
    resolved_fp = prev_fp.filter(pa.array(~_is_in(prev_fp, cur_fp))).to_pylist()
    resolved = previous_rows(resolved_fp) if resolved_fp else current.iloc[:0]
    return HistoryDiff(
        previous_run=PreviousRun(
            id=previous_run["id"],
            finished_at=previous_run["finished_at"],
            score=previous_run["score"],
            as_of=previous_run.get("as_of"),
        ),
        new=int(is_new.sum()),
        resolved=len(resolved_fp),
        persisting=int((~is_new).sum()),
        new_items=violation_dicts(current[is_new.to_numpy()]),
        resolved_items=violation_dicts(
            resolved.sort_values(["rule_code", "opportunity_id"], kind="stable")
        ),
        trend=trend,
    )


def _arrow(s: pd.Series) -> pa.Array:
    return pa.array(s.astype(object).to_numpy(), type=pa.string())


def _is_in(values: pa.Array, pool: pa.Array) -> np.ndarray:
    """Vectorized membership (pandas' isin on Arrow strings loops in Python: ~20x slower)."""
    return pc.is_in(values, value_set=pool).to_numpy(zero_copy_only=False).astype(bool)
