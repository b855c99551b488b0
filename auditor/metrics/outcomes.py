"""Outcome metrics over deals closed in the period: win rate, cycle length, deal size, losses.

"Closed in the period" means the close date falls in the period (for ``all``: every closed
deal, whatever its close date).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from auditor.metric_types import Metric
from auditor.metrics.base import (
    NO_HISTORY,
    MetricInputs,
    floats,
    mean_or_none,
    median_or_none,
    metric,
    ratio,
    unavailable,
)
from auditor.metrics.periods import NAT_DAY, Period

WIN_RATE = (
    "Won ÷ (won + lost) among opportunities closed in the period (close date in the period). "
    "'from_qualification' is the same restricted to opportunities that reached qualification "
    "(stage history plus current stage; opportunities without history left out)."
)
CYCLE_LENGTH = (
    "Median calendar days from creation to close date, for won and for lost opportunities "
    "closed in the period, separately. Records closing before they were created are left out "
    "and counted as 'invalid'."
)
DEAL_SIZE = (
    "Median and mean amount of opportunities won in the period (won deals without an amount "
    "are left out and counted as 'missing_amount'); by segment when a segment field is "
    "configured. Amounts are summed as recorded, whatever their currency (see 'currencies')."
)
LOSS_REASONS = (
    "Loss reasons of opportunities lost in the period: count of each reason and its share of "
    "the losses that give one; 'missing_share' is the share of all losses with no reason."
)


def win_rate(mi: MetricInputs, periods: list[Period]) -> Metric:
    name = "win_rate"
    if reason := mi.missing("close_date"):
        return unavailable(name, WIN_RATE, reason)
    with_hist = mi.has_stage_history
    out: dict[str, Any] = {}
    for p in periods:
        closed = mi.closed_in(p)
        won, lost = int((closed & mi.won).sum()), int((closed & mi.lost).sum())
        row: dict[str, Any] = {"won": won, "lost": lost, "rate": ratio(won, won + lost)}
        if with_hist:
            q = closed & mi.with_history & mi.reached_qualification
            qw, ql = int((q & mi.won).sum()), int((q & mi.lost).sum())
            row["from_qualification"] = {
                "won": qw,
                "lost": ql,
                "rate": ratio(qw, qw + ql),
                "excluded_no_history": int((closed & ~mi.with_history).sum()),
            }
        else:
            row["from_qualification"] = None
        out[p.label] = row
    return metric(
        name,
        WIN_RATE,
        from_qualification_available=with_hist,
        from_qualification_reason=None if with_hist else NO_HISTORY,
        by_period=out,
    )


def _days_summary(days: np.ndarray) -> dict[str, Any]:
    return {"count": int(len(days)), "median_days": median_or_none(days)}


def cycle_length(mi: MetricInputs, periods: list[Period]) -> Metric:
    name = "cycle_length"
    if reason := mi.missing("created_at", "close_date"):
        return unavailable(name, CYCLE_LENGTH, reason)
    known = (mi.created_day != NAT_DAY) & (mi.close_day != NAT_DAY)
    days = np.where(known, mi.close_day - np.where(known, mi.created_day, 0), -1)
    valid = known & (days >= 0)
    out: dict[str, Any] = {}
    for p in periods:
        closed = mi.closed_in(p) & known
        out[p.label] = {
            "won": _days_summary(days[closed & valid & mi.won]),
            "lost": _days_summary(days[closed & valid & mi.lost]),
            "invalid": int((closed & ~valid).sum()),
        }
    return metric(name, CYCLE_LENGTH, by_period=out)


def _size(amounts: np.ndarray) -> dict[str, Any]:
    return {
        "count": int(len(amounts)),
        "median": median_or_none(amounts, 2),
        "mean": mean_or_none(amounts, 2),
    }


def deal_size(mi: MetricInputs, periods: list[Period], segment_field: str | None) -> Metric:
    name = "deal_size"
    if reason := mi.missing("amount"):
        return unavailable(name, DEAL_SIZE, reason)
    amount = floats(mi.opp["amount"])
    has_amount = ~np.isnan(amount)
    segment_reason = None
    segment = None
    if segment_field is not None:
        if segment_field in mi.opp.columns:
            segment = mi.opp[segment_field].astype("string").fillna("(none)").to_numpy()
        else:
            segment_reason = f"segment field {segment_field!r} is not a column of the data"
    currency = mi.opp["currency"]
    out: dict[str, Any] = {}
    for p in periods:
        won = mi.closed_in(p) & mi.won
        sel = won & has_amount
        row = _size(amount[sel])
        row["missing_amount"] = int((won & ~has_amount).sum())
        row["currencies"] = sorted(str(c) for c in currency[sel].dropna().unique())
        if len(mi.currencies(sel)) > 1:  # a median across currencies means nothing
            row["median"] = row["mean"] = None
            row["by_currency"] = {c: _size(amount[sel & (mi.currency_codes == c)])
                                  for c in mi.currencies(sel)}
        if segment is not None:
            frame = pd.DataFrame({"seg": segment[sel], "amount": amount[sel]})
            g = frame.groupby("seg", sort=True)["amount"].agg(["size", "median", "mean"])
            row["by_segment"] = {
                str(k): {
                    "count": int(r["size"]),
                    "median": round(float(r["median"]), 2),
                    "mean": round(float(r["mean"]), 2),
                }
                for k, r in g.iterrows()
            }
        out[p.label] = row
    return metric(
        name,
        DEAL_SIZE,
        segment_field=segment_field if segment is not None else None,
        segment_reason=segment_reason,
        by_period=out,
    )


def loss_reasons(mi: MetricInputs, periods: list[Period]) -> Metric:
    name = "loss_reasons"
    if reason := mi.missing("loss_reason"):
        return unavailable(name, LOSS_REASONS, reason)
    reasons = mi.opp["loss_reason"]
    out: dict[str, Any] = {}
    for p in periods:
        lost = mi.closed_in(p) & mi.lost
        r = reasons[lost]
        given = r.dropna()
        counts = given.value_counts()
        # most frequent first; ties in name order so the output is stable
        counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
        n_lost, n_missing = int(lost.sum()), int(r.isna().sum())
        out[p.label] = {
            "lost": n_lost,
            "missing": n_missing,
            "missing_share": ratio(n_missing, n_lost),
            "reasons": [
                {"reason": str(k), "count": int(c), "share": ratio(c, len(given))}
                for k, c in counts.items()
            ],
        }
    return metric(name, LOSS_REASONS, by_period=out)
