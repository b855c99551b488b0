"""Shared inputs and helpers for the metric modules.

:class:`MetricInputs` turns the opportunity columns every metric needs into plain numpy arrays
once (day numbers in the audit time zone, closed / won / lost masks, "reached qualification"),
so each metric is a handful of vectorized masks and sums. History frames come from
:mod:`auditor.derived` (cached on the Snapshot and shared with the rules).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from auditor.context import AuditContext
from auditor.derived import has_history, stage_spans, visited
from auditor.metric_types import Metric
from auditor.metrics.periods import NAT_DAY, Period, day_number
from auditor.snapshot import Snapshot
from auditor.stages import STAGE_ORDER

_US_PER_DAY = 86_400_000_000
#: stage codes that count as "reached qualification": qualification, any later open stage, won
QUALIFIED_CODES = [
    STAGE_ORDER[s]
    for s in (
        "qualification",
        "discovery",
        "solution",
        "proposal",
        "negotiation",
        "closed_won",
        "handoff",
    )
]
#: the open part of the process (lead .. negotiation) as stage codes
OPEN_CODES = list(range(STAGE_ORDER["negotiation"] + 1))
NO_HISTORY = "not available: source has no stage history"


def day_numbers(col: pd.Series, timezone: str = "UTC") -> np.ndarray:
    """Calendar day of each value as days since 1970-01-01 (int64; missing = NAT_DAY).

    Tz-aware timestamps are taken in the audit time zone; naive dates are used as they are.
    """
    if isinstance(col.dtype, pd.DatetimeTZDtype) and timezone != "UTC":
        col = col.dt.tz_convert(timezone).dt.tz_localize(None)
    # the int64 microseconds as stored (UTC for tz-aware columns): no converted copy
    arr = col.array
    us = (arr if arr.unit == "us" else arr.as_unit("us")).asi8
    missing = us == np.iinfo(np.int64).min
    days = np.floor_divide(us, _US_PER_DAY)
    days[missing] = NAT_DAY
    return days


def ratio(num: float, den: float, digits: int = 4) -> float | None:
    """num / den rounded, or None when the denominator is zero (never NaN / inf in JSON)."""
    return None if den == 0 else round(float(num) / float(den), digits)


def median_or_none(values: np.ndarray, digits: int = 1) -> float | None:
    return None if len(values) == 0 else round(float(np.median(values)), digits)


def mean_or_none(values: np.ndarray, digits: int = 2) -> float | None:
    return None if len(values) == 0 else round(float(np.mean(values)), digits)


def unavailable(name: str, definition: str, reason: str) -> Metric:
    """A metric the source cannot support: says why instead of reporting numbers from NA."""
    return Metric.unavailable(name, definition, reason)


def metric(name: str, definition: str, **values: Any) -> Metric:
    return Metric(name, definition, values=values)


def floats(col: pd.Series) -> np.ndarray:
    """A numeric column as float64 with NaN for missing."""
    return col.to_numpy(dtype=float, na_value=np.nan)


@dataclass
class MetricInputs:
    """Per-opportunity arrays shared by every metric of one run."""

    snap: Snapshot
    ctx: AuditContext

    @property
    def opp(self) -> pd.DataFrame:
        return self.snap.opportunities

    @property
    def n(self) -> int:
        return len(self.snap.opportunities)

    def provides(self, *fields: str) -> bool:
        """True when the source provides every one of ``fields``."""
        return set(fields) <= set(self.snap.meta.provided_fields)

    def missing(self, *fields: str) -> str | None:
        """The "not available" reason for fields the source does not provide (None if all are)."""
        absent = [f for f in fields if f not in self.snap.meta.provided_fields]
        if not absent:
            return None
        return "not available: source does not provide " + ", ".join(absent)

    @property
    def has_stage_history(self) -> bool:
        return bool(self.snap.meta.has_stage_history) and len(self.snap.stage_history) > 0

    @cached_property
    def _currency_factors(self) -> tuple[np.ndarray, np.ndarray]:
        """(code per opportunity, distinct upper-cased currencies; code -1 = none)."""
        codes, uniq = pd.factorize(self.opp["currency"])
        upper = np.array([str(u).upper() for u in uniq], dtype=object)
        # "usd" and "USD" are one currency: re-factorize the few upper-cased values
        ucodes, uuniq = pd.factorize(upper) if len(upper) else (np.zeros(0, np.int64), upper)
        out = np.where(codes >= 0, ucodes[codes] if len(ucodes) else -1, -1)
        return out.astype(np.int64), np.asarray(uuniq, dtype=object)

    @cached_property
    def currency_codes(self) -> np.ndarray:
        """Each opportunity's currency code as text ("" when none)."""
        codes, uniq = self._currency_factors
        return np.append(uniq, "").astype(str)[codes]

    def currencies(self, sel: np.ndarray) -> list[str]:
        """Distinct currencies of the amounts in ``sel``: more than one means amounts must not be
        added (the source gave no conversion rates), so sums are reported per currency."""
        codes, uniq = self._currency_factors
        present = np.unique(codes[sel])
        return sorted({str(uniq[c]) for c in present if c >= 0 and uniq[c]})

    # -- outcome masks ------------------------------------------------------------------
    @cached_property
    def stage_code(self) -> np.ndarray:
        return self.opp["stage"].cat.codes.to_numpy()

    # the lifecycle is derived once, by the Snapshot validator (auditor/lifecycle.py)
    @cached_property
    def closed(self) -> np.ndarray:
        return self.opp["is_closed"].to_numpy(dtype=bool, na_value=False)

    @cached_property
    def won(self) -> np.ndarray:
        return self.opp["is_won"].to_numpy(dtype=bool, na_value=False)

    @cached_property
    def lost(self) -> np.ndarray:
        return self.opp["is_lost"].to_numpy(dtype=bool, na_value=False)

    @cached_property
    def open(self) -> np.ndarray:
        return self.opp["is_open"].to_numpy(dtype=bool, na_value=False)

    # -- days ---------------------------------------------------------------------------
    @cached_property
    def as_of_day(self) -> int:
        return day_number(self.ctx.as_of)

    @cached_property
    def created_day(self) -> np.ndarray:
        return day_numbers(self.opp["created_at"], self.ctx.timezone)

    @cached_property
    def close_day(self) -> np.ndarray:
        return day_numbers(self.opp["close_date"], self.ctx.timezone)

    @cached_property
    def due_day(self) -> np.ndarray:
        return day_numbers(self.opp["next_step_due"], self.ctx.timezone)

    def closed_in(self, period: Period) -> np.ndarray:
        return self.closed & period.contains(self.close_day)

    # -- history ------------------------------------------------------------------------
    @cached_property
    def with_history(self) -> np.ndarray:
        return has_history(self.snap).to_numpy()

    @cached_property
    def visited(self) -> np.ndarray:
        """(opportunity × stage code) bool: history ∪ current stage (auditor.derived.visited)."""
        return visited(self.snap).to_numpy()

    @cached_property
    def reached_qualification(self) -> np.ndarray:
        """Was ever in qualification, a later open stage, or won (history ∪ current stage)."""
        return self.visited[:, QUALIFIED_CODES].any(axis=1) | self.won

    @cached_property
    def spans(self) -> pd.DataFrame:
        """Stage stays (auditor.derived.stage_spans) plus their entry / exit day numbers."""
        sp = stage_spans(self.snap)
        # a new frame over the same columns (assign would copy every column of 4M stays)
        out = pd.DataFrame({c: sp[c] for c in ("row", "code", "first")}, copy=False)
        tz = self.ctx.timezone
        for col, name in (("entered_at", "entered_day"), ("left_at", "left_day")):
            at = sp[col]  # naive UTC
            out[name] = day_numbers(at if tz == "UTC" else at.dt.tz_localize("UTC"), tz)
        return out
