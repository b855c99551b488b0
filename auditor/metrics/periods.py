"""Reporting periods: calendar (or fiscal) quarters and months relative to the audit day.

Quarters are calendar quarters unless ``metrics.fiscal_year_start_month`` moves the year start;
fiscal quarters are labelled by the year the fiscal year *ends* in ("FY2027-Q1"), as most CRMs
do. Bounds are whole calendar days, both inclusive; the current quarter / month runs to its
last day even though that is after the audit day (pipeline closing later this quarter belongs to
it). ``all`` has no bounds and applies no date filter at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_EPOCH = pd.Timestamp("1970-01-01")


@dataclass(frozen=True)
class Period:
    """A named date range. ``start`` / ``end`` are inclusive days; None for ``all``."""

    key: str  # the config name, e.g. "last_quarter"
    label: str  # e.g. "2026-Q3"
    start: pd.Timestamp | None
    end: pd.Timestamp | None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "key": self.key,
            "label": self.label,
            "start": None if self.start is None else self.start.date().isoformat(),
            "end": None if self.end is None else self.end.date().isoformat(),
        }

    def contains(self, days: np.ndarray) -> np.ndarray:
        """Mask for an int64 array of day numbers (days since 1970-01-01; missing = NAT_DAY).

        ``all`` contains everything, even rows whose date is missing.
        """
        if self.start is None or self.end is None:
            return np.ones(days.shape, dtype=bool)
        lo, hi = day_number(self.start), day_number(self.end)
        return (days >= lo) & (days <= hi)


#: day number used for a missing date; never inside a bounded period
NAT_DAY = np.iinfo(np.int64).min


def day_number(ts: pd.Timestamp) -> int:
    return int((ts.normalize() - _EPOCH).days)


def _quarter_freq(fiscal_start_month: int) -> str:
    # pandas names a quarterly frequency by the month the (fiscal) year ends in
    return f"Q-{_MONTHS[(fiscal_start_month - 2) % 12]}"


def _quarter_label(p: pd.Period, fiscal_start_month: int) -> str:
    if fiscal_start_month == 1:
        return f"{p.qyear}-Q{p.quarter}"
    return f"FY{p.qyear}-Q{p.quarter}"


def _bounded(key: str, label: str, p: pd.Period) -> Period:
    return Period(key, label, p.start_time.normalize(), p.end_time.normalize())


def resolve_period(key: str, as_of: pd.Timestamp, fiscal_start_month: int = 1) -> Period:
    """The period ``key`` (a ``MetricsSection.periods`` name) as seen on the audit day."""
    day = pd.Timestamp(as_of).normalize()
    if key in ("current_quarter", "last_quarter"):
        q = pd.Period(day, freq=_quarter_freq(fiscal_start_month))
        if key == "last_quarter":
            q = q - 1
        return _bounded(key, _quarter_label(q, fiscal_start_month), q)
    if key in ("current_month", "last_month"):
        m = pd.Period(day, freq="M")
        if key == "last_month":
            m = m - 1
        return _bounded(key, str(m), m)
    if key == "year_to_date":
        q = pd.Period(day, freq=_quarter_freq(fiscal_start_month))
        first_q = q - (q.quarter - 1)
        prefix = str(q.qyear) if fiscal_start_month == 1 else f"FY{q.qyear}"
        return Period(key, f"{prefix}-YTD", first_q.start_time.normalize(), day)
    if key == "all":
        return Period(key, "all", None, None)
    raise ValueError(f"unknown metrics period {key!r}")


def resolve_periods(
    keys: list[str], as_of: pd.Timestamp, fiscal_start_month: int = 1
) -> list[Period]:
    """Periods in config order, duplicates (same label) dropped."""
    out: list[Period] = []
    for key in keys:
        p = resolve_period(key, as_of, fiscal_start_month)
        if all(p.label != q.label for q in out):
            out.append(p)
    return out
