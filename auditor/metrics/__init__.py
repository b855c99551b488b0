"""Pipeline-health metrics (DESIGN §6), computed from the Snapshot and the audit result.

Every metric is a dict with ``name``, ``definition`` (the sentence the report prints),
``available`` / ``reason`` (a metric the source cannot support says why instead of reporting
numbers from missing data) and its values — per period under ``by_period`` keyed by the period
label, or as of the audit day. Ratios whose denominator is zero are ``None`` (JSON null), never
NaN or inf. The JSON shape is documented in docs/metrics.md.

Modules: ``periods`` (period bounds and labels), ``base`` (arrays shared by all metrics),
``funnel`` (history-based), ``outcomes`` (closed deals), ``pipeline`` (open deals),
``hygiene`` (the score from the findings).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from auditor.config import MetricsSection
from auditor.context import AuditContext
from auditor.metrics.base import MetricInputs, floats
from auditor.metrics.funnel import lead_quality, stage_conversion, stage_velocity
from auditor.metrics.hygiene import (
    HYGIENE_DEFINITION,
    group_scores,
    hygiene_scores,
    opportunity_penalty,
)
from auditor.metrics.outcomes import cycle_length, deal_size, loss_reasons, win_rate
from auditor.metrics.periods import Period, resolve_periods
from auditor.metrics.pipeline import follow_up_discipline, pipeline_coverage
from auditor.results import AuditResult
from auditor.snapshot import Snapshot

#: metric keys of metrics.json, in report order
METRIC_NAMES: tuple[str, ...] = (
    "lead_quality",
    "stage_conversion",
    "win_rate",
    "cycle_length",
    "deal_size",
    "pipeline_coverage",
    "loss_reasons",
    "follow_up_discipline",
    "stage_velocity",
    "hygiene_score",
)


def _counts(mi: MetricInputs) -> dict[str, Any]:
    amount = floats(mi.opp["amount"])
    return {
        "opportunities": mi.n,
        "open": int(mi.open.sum()),
        "closed": int(mi.closed.sum()),
        "won": int(mi.won.sum()),
        "lost": int(mi.lost.sum()),
        "open_amount": round(float(np.nansum(amount[mi.open])), 2),
        "with_stage_history": int(mi.with_history.sum()) if mi.has_stage_history else 0,
    }


def compute_metrics(
    snap: Snapshot, result: AuditResult, ctx: AuditContext, cfg: MetricsSection
) -> dict[str, Any]:
    """All metrics as a JSON-ready dict keyed by metric name (see docs/metrics.md)."""
    periods = resolve_periods(list(cfg.periods), ctx.as_of, cfg.fiscal_year_start_month)
    mi = MetricInputs(snap, ctx)
    out: dict[str, Any] = {
        "as_of": ctx.as_of.date().isoformat(),
        "timezone": ctx.timezone,
        "periods": [p.to_dict() for p in periods],
        "metric_names": list(METRIC_NAMES),
        "counts": _counts(mi),
    }
    out["lead_quality"] = lead_quality(mi, periods)
    out["stage_conversion"] = stage_conversion(mi, periods)
    out["win_rate"] = win_rate(mi, periods)
    out["cycle_length"] = cycle_length(mi, periods)
    out["deal_size"] = deal_size(mi, periods, cfg.segment_field)
    out["pipeline_coverage"] = pipeline_coverage(mi, periods, dict(cfg.targets))
    out["loss_reasons"] = loss_reasons(mi, periods)
    out["follow_up_discipline"] = follow_up_discipline(mi)
    out["stage_velocity"] = stage_velocity(mi, periods)
    out["hygiene_score"] = hygiene_scores(snap, result)
    return out


__all__ = [
    "HYGIENE_DEFINITION",
    "METRIC_NAMES",
    "Period",
    "compute_metrics",
    "group_scores",
    "hygiene_scores",
    "opportunity_penalty",
    "resolve_periods",
]
