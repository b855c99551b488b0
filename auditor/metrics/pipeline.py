"""Open-pipeline metrics: coverage against targets, and follow-up discipline on the audit day."""

from __future__ import annotations

from typing import Any

import numpy as np

from auditor.metric_types import Metric
from auditor.metrics.base import MetricInputs, floats, metric, ratio, unavailable
from auditor.metrics.periods import NAT_DAY, Period
from auditor.stages import STAGE_ORDER

PIPELINE_COVERAGE = (
    "Open amount with a close date in the period ÷ the period's target (metrics.targets), raw "
    "and probability-weighted (amount × probability). 'coverage_of_remaining' divides by the "
    "target less the amount already won in the period. Null when no target is configured."
)
FOLLOW_UP = (
    "Of the open opportunities past first contact (qualification to negotiation) on the audit "
    "day, the share with a next step dated today or later. A next step without a date does not "
    "count as scheduled ('undated'); one dated before today is 'overdue'."
)
FOLLOW_UP_UNDATED = (
    "Of the open opportunities past first contact (qualification to negotiation) on the audit "
    "day, the share with a next step recorded (the source has no next-step dates, so overdue "
    "cannot be judged)."
)


def _money(x: float) -> float:
    return round(float(x), 2)


def pipeline_coverage(
    mi: MetricInputs, periods: list[Period], targets: dict[str, float]
) -> Metric:
    name = "pipeline_coverage"
    if reason := mi.missing("amount", "close_date"):
        return unavailable(name, PIPELINE_COVERAGE, reason)
    amount = floats(mi.opp["amount"])
    has_amount = ~np.isnan(amount)
    weighted_ok = mi.provides("probability")
    prob = floats(mi.opp["probability"])
    has_prob = ~np.isnan(prob)
    out: dict[str, Any] = {}
    for p in periods:
        sel = mi.open & p.contains(mi.close_day)
        open_amount = _money(amount[sel & has_amount].sum())
        won_amount = _money(amount[mi.closed_in(p) & mi.won & has_amount].sum())
        target = targets.get(p.label)
        remaining = None if target is None else max(float(target) - won_amount, 0.0)
        row: dict[str, Any] = {
            "open_deals": int(sel.sum()),
            "missing_amount": int((sel & ~has_amount).sum()),
            "open_amount": open_amount,
            "target": target,
            "coverage": None if target is None else ratio(open_amount, target),
            "won_amount": won_amount,
            "remaining_target": remaining,
            "coverage_of_remaining": None if remaining is None else ratio(open_amount, remaining),
        }
        if weighted_ok:
            w = sel & has_amount & has_prob
            weighted = _money((amount[w] * prob[w]).sum())
            row["weighted_amount"] = weighted
            row["missing_probability"] = int((sel & has_amount & ~has_prob).sum())
            row["weighted_coverage"] = None if target is None else ratio(weighted, target)
        else:
            row["weighted_amount"] = row["weighted_coverage"] = None
            row["missing_probability"] = None
        codes = mi.currencies(sel & has_amount) if len(mi.currencies(has_amount)) > 1 else []
        if len(codes) > 1 or len(mi.currencies(mi.won & has_amount)) > 1:
            # several currencies and no rates: per currency, never one sum
            row["by_currency"] = {
                c: {"open_amount": _money(amount[sel & has_amount & (mi.currency_codes == c)]
                                          .sum()),
                    "won_amount": _money(amount[mi.closed_in(p) & mi.won & has_amount
                                                & (mi.currency_codes == c)].sum())}
                for c in mi.currencies((sel | (mi.closed_in(p) & mi.won)) & has_amount)}
            for k in ("open_amount", "won_amount", "coverage", "remaining_target",
                      "coverage_of_remaining", "weighted_amount", "weighted_coverage"):
                row[k] = None
        out[p.label] = row
    labels = {p.label for p in periods}
    return metric(
        name,
        PIPELINE_COVERAGE,
        weighted_available=weighted_ok,
        weighted_reason=None if weighted_ok else mi.missing("probability"),
        targets_without_period=sorted(k for k in targets if k not in labels),
        by_period=out,
    )


def follow_up_discipline(mi: MetricInputs) -> Metric:
    name = "follow_up_discipline"
    has_due, has_text = mi.provides("next_step_due"), mi.provides("next_step")
    if not (has_due or has_text):
        return unavailable(
            name, FOLLOW_UP, "not available: source does not provide next_step or next_step_due"
        )
    code = mi.stage_code
    eligible = (
        mi.open & (code >= STAGE_ORDER["qualification"]) & (code <= STAGE_ORDER["negotiation"])
    )
    text = mi.opp["next_step"].notna().to_numpy() if has_text else np.zeros(mi.n, dtype=bool)
    if has_due:
        due = mi.due_day
        dated = due != NAT_DAY
        scheduled = eligible & dated & (due >= mi.as_of_day)
        overdue = eligible & dated & (due < mi.as_of_day)
        undated = eligible & ~dated & text
        none = eligible & ~dated & ~text
        n_elig = int(eligible.sum())
        return metric(
            name,
            FOLLOW_UP,
            as_of=mi.ctx.as_of.date().isoformat(),
            dated=True,
            eligible=n_elig,
            scheduled=int(scheduled.sum()),
            overdue=int(overdue.sum()),
            undated=int(undated.sum()),
            no_next_step=int(none.sum()),
            share=ratio(scheduled.sum(), n_elig),
            overdue_share=ratio(overdue.sum(), n_elig),
        )
    n_elig = int(eligible.sum())
    recorded = eligible & text
    return metric(
        name,
        FOLLOW_UP_UNDATED,
        as_of=mi.ctx.as_of.date().isoformat(),
        dated=False,
        eligible=n_elig,
        scheduled=None,
        overdue=None,
        undated=int(recorded.sum()),
        no_next_step=int((eligible & ~text).sum()),
        share=ratio(recorded.sum(), n_elig),
        overdue_share=None,
    )
