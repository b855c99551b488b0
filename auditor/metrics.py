"""Pipeline-health metrics (DESIGN §6), computed from the Snapshot and the audit result.

Every metric is a dict with ``name``, ``definition`` (the sentence the report prints) and its
values, so ``metrics.json`` and the reports carry the definition next to the number.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from auditor.config import MetricsSection
from auditor.context import AuditContext
from auditor.engine import AuditResult
from auditor.snapshot import Snapshot

SEVERITY_WEIGHT = {"error": 1.0, "warning": 0.5, "info": 0.1}

HYGIENE_DEFINITION = (
    "100 × (1 − mean penalty per opportunity). Each opportunity's penalty is the weight of the "
    "worst severity among its open findings (error 1.0, warning 0.5, info 0.1; clean 0). "
    "Suppressed findings carry no penalty. Computed over all audited opportunities of the "
    "org, of each team (owner's team) and of each owner."
)


def opportunity_penalty(snap: Snapshot, result: AuditResult) -> pd.Series:
    """Penalty per opportunity row (0..1): the weight of its worst finding."""
    v = result.violations
    pen = pd.Series(0.0, index=snap.opportunities["id"].astype(str))
    if len(v):
        w = v["severity"].astype(str).map(SEVERITY_WEIGHT).fillna(0.5)
        worst = w.groupby(v["opportunity_id"].astype(str)).max()
        pen.loc[worst.index.intersection(pen.index)] = worst
    return pd.Series(pen.to_numpy(), index=snap.opportunities.index)


def _score(pen: pd.Series) -> float | None:
    return None if len(pen) == 0 else round(100.0 * (1.0 - float(pen.mean())), 1)


def hygiene_scores(snap: Snapshot, result: AuditResult) -> dict[str, Any]:
    opp = snap.opportunities
    pen = opportunity_penalty(snap, result)
    by_owner = pen.groupby(opp["owner_id"].astype(str).fillna("(none)")).mean()
    owners = snap.owners.set_index(snap.owners["id"].astype(str))
    team = opp["owner_id"].astype(str).map(owners["team"]).fillna("(no team)")
    by_team = pen.groupby(team.astype(str)).mean()
    return {
        "name": "hygiene_score",
        "definition": HYGIENE_DEFINITION,
        "org": _score(pen),
        "by_team": {k: round(100 * (1 - float(x)), 1) for k, x in by_team.items()},
        "by_owner": {k: round(100 * (1 - float(x)), 1) for k, x in by_owner.items()},
    }


def compute_metrics(
    snap: Snapshot, result: AuditResult, ctx: AuditContext, cfg: MetricsSection
) -> dict[str, Any]:
    """All metrics as a JSON-ready dict keyed by metric name."""
    opp = snap.opportunities
    open_ = ~opp["is_closed"].fillna(False).astype(bool)
    return {
        "as_of": ctx.as_of.date().isoformat(),
        "counts": {
            "opportunities": int(len(opp)),
            "open": int(open_.sum()),
            "open_amount": float(
                np.nansum(opp.loc[open_, "amount"].to_numpy(dtype=float, na_value=np.nan))
            ),
        },
        "hygiene_score": hygiene_scores(snap, result),
    }
