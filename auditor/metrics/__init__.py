"""Pipeline-health metrics (DESIGN §6), computed from the Snapshot and the audit result.

Every metric (typed in :mod:`auditor.metric_types`) has ``name``, ``definition`` (the sentence
the report prints), ``available`` / ``reason`` (a metric the source cannot support says why
instead of reporting numbers from missing data) and its values — per period under
``by_period`` keyed by the period label, or as of the audit day. Ratios whose denominator is
zero are ``None`` (JSON null), never NaN or inf. The JSON shape is documented in docs/metrics.md.

Modules: ``periods`` (period bounds and labels), ``base`` (arrays shared by all metrics),
``funnel`` (history-based), ``outcomes`` (closed deals), ``pipeline`` (open deals),
``hygiene`` (the score from the findings).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from auditor.config import MetricsSection
from auditor.context import AuditContext
from auditor.metric_types import METRIC_NAMES, Counts, Metrics, PeriodBounds
from auditor.metrics.base import MetricInputs, floats
from auditor.metrics.funnel import lead_quality, stage_conversion, stage_velocity
from auditor.metrics.hygiene import HYGIENE_DEFINITION, hygiene_scores
from auditor.metrics.outcomes import cycle_length, deal_size, loss_reasons, win_rate
from auditor.metrics.periods import NAT_DAY, Period, resolve_periods
from auditor.metrics.pipeline import follow_up_discipline, pipeline_coverage
from auditor.metrics.process import process_compliance
from auditor.results import AuditResult
from auditor.snapshot import Snapshot


def _counts(mi: MetricInputs) -> Counts:
    amount = floats(mi.opp["amount"])
    sel = mi.open & ~np.isnan(amount)
    codes = mi.currencies(sel)
    by_currency = None
    if len(codes) > 1:
        by_currency = {
            c: round(float(amount[sel & (mi.currency_codes == c)].sum()), 2) for c in codes}
    return Counts(
        opportunities=mi.n,
        open=int(mi.open.sum()),
        closed=int(mi.closed.sum()),
        won=int(mi.won.sum()),
        lost=int(mi.lost.sum()),
        # amounts in several currencies are never added: null, and the sums per currency
        open_amount=round(float(np.nansum(amount[mi.open])), 2) if len(codes) < 2 else None,
        with_stage_history=int(mi.with_history.sum()) if mi.has_stage_history else 0,
        open_amount_by_currency=by_currency,
    )


def compute_metrics(
    snap: Snapshot, result: AuditResult, ctx: AuditContext, cfg: MetricsSection
) -> Metrics:
    """All metrics of one run; ``.to_dict()`` is metrics.json (see docs/metrics.md)."""
    periods = resolve_periods(list(cfg.periods), ctx.as_of, cfg.fiscal_year_start_month)
    mi = MetricInputs(snap, ctx)
    out = Metrics(
        as_of=ctx.as_of.date().isoformat(),
        timezone=ctx.timezone,
        periods=[PeriodBounds(**p.to_dict()) for p in periods],
        counts=_counts(mi),
        lead_quality=lead_quality(mi, periods),
        stage_conversion=stage_conversion(mi, periods),
        win_rate=win_rate(mi, periods),
        cycle_length=cycle_length(mi, periods),
        deal_size=deal_size(mi, periods, cfg.segment_field),
        pipeline_coverage=pipeline_coverage(mi, periods, dict(cfg.targets)),
        loss_reasons=loss_reasons(mi, periods),
        follow_up_discipline=follow_up_discipline(mi),
        stage_velocity=stage_velocity(mi, periods),
        hygiene_score=hygiene_scores(snap, result),
        process_compliance=process_compliance(mi, result, snap.owners),
    )
    out.caveats = caveats(mi, periods)
    if out.caveats:
        out.win_rate.values["caveats"] = [c for c in out.caveats if "lost" in c]
    return out


def caveats(mi: MetricInputs, periods: list[Period]) -> list[str]:
    """What a reader must know before trusting the numbers (issue #14): no lost deals at all,
    periods without any deal (and which periods do hold data)."""
    notes: list[str] = []
    won, lost = int(mi.won.sum()), int(mi.lost.sum())
    if won and not lost:
        notes.append(
            f"the data holds no closed-lost deal ({won:,} won): win rates of 100% mean lost "
            "deals are not recorded (or were deleted), not that every deal is won"
        )
    created, close = mi.created_day, mi.close_day
    empty = [p for p in periods if p.key != "all"
             and not (p.contains(created) | p.contains(close)).any()]
    if empty and mi.n:
        closed_days = close[mi.closed & (close != NAT_DAY)]  # an open deal's is a plan
        days = np.concatenate([created[created != NAT_DAY], closed_days])
        held = ""
        if len(days):
            q = pd.PeriodIndex(pd.to_datetime(days, unit="D"), freq="Q")
            counts = pd.Series(q).value_counts().sort_index()
            recent = [f"{p.year}-Q{p.quarter} ({n:,})" for p, n in counts.tail(4).items()]
            held = "; quarters holding data (deals created or closed): " + ", ".join(recent)
        labels = ", ".join(p.label for p in empty)
        notes.append(
            f"no deal was created or closed in {labels}: the metrics for "
            f"{'that period' if len(empty) == 1 else 'those periods'} are empty{held}"
        )
    return notes


__all__ = [
    "HYGIENE_DEFINITION",
    "METRIC_NAMES",
    "Metrics",
    "Period",
    "compute_metrics",
    "hygiene_scores",
    "resolve_periods",
]
