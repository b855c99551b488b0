"""The hygiene score: one 0–100 number per org, team and owner from the audit findings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from auditor.engine import AuditResult
from auditor.snapshot import Snapshot

SEVERITY_WEIGHT = {"error": 1.0, "warning": 0.5, "info": 0.1}
#: weight of a finding whose severity is not one of the three (a misconfigured plugin rule)
UNKNOWN_SEVERITY_WEIGHT = 0.5
NO_OWNER = "(none)"
NO_TEAM = "(no team)"

HYGIENE_DEFINITION = (
    "100 × (1 − mean penalty per opportunity). Each opportunity's penalty is the weight of the "
    "worst severity among its open findings (error 1.0, warning 0.5, info 0.1; clean 0). "
    "Suppressed findings carry no penalty. Computed over all audited opportunities of the "
    "org, of each team (owner's team) and of each owner."
)


def opportunity_penalty(snap: Snapshot, result: AuditResult) -> np.ndarray:
    """Penalty per opportunity row (0..1): the weight of its worst finding."""
    opp = snap.opportunities
    pen = np.zeros(len(opp))
    v = result.violations
    if len(v):
        w = (
            v["severity"]
            .astype(str)
            .map(SEVERITY_WEIGHT)
            .fillna(UNKNOWN_SEVERITY_WEIGHT)
            .to_numpy(dtype=float)
        )
        pos = pd.Index(opp["id"].astype(str)).get_indexer(v["opportunity_id"].astype(str))
        ok = pos >= 0
        np.maximum.at(pen, pos[ok], w[ok])
    return pen


def _score(mean_penalty: float) -> float:
    return round(100.0 * (1.0 - float(mean_penalty)), 1)


def _groups(pen: np.ndarray, key: pd.Series) -> pd.DataFrame:
    frame = pd.DataFrame({"key": key.to_numpy(), "pen": pen, "flagged": pen > 0})
    g = frame.groupby("key", sort=True).agg(
        opportunities=("pen", "size"), flagged=("flagged", "sum"), mean=("pen", "mean")
    )
    g["score"] = (100.0 * (1.0 - g["mean"])).round(1)
    return g


def _detail(g: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {
        str(k): {"score": float(s), "opportunities": int(n), "flagged": int(f)}
        for k, s, n, f in zip(g.index, g["score"], g["opportunities"], g["flagged"], strict=True)
    }


def hygiene_scores(snap: Snapshot, result: AuditResult) -> dict[str, Any]:
    """Org, team and owner hygiene scores; ``org`` is None for an empty Snapshot."""
    opp = snap.opportunities
    pen = opportunity_penalty(snap, result)
    owner = opp["owner_id"].astype("string").fillna(NO_OWNER)
    o = snap.owners.drop_duplicates("id")
    o = o.set_index(o["id"].astype("string"))
    team = owner.map(o["team"].astype("string")).astype("string").fillna(NO_TEAM)
    teams = _detail(_groups(pen, team))
    owners = _detail(_groups(pen, owner))
    names = o["name"].astype("string").dropna().astype(str).to_dict()
    owner_team = o["team"].astype("string").dropna().astype(str).to_dict()
    for k, d in owners.items():
        d["name"] = names.get(k)
        d["team"] = owner_team.get(k)
    return {
        "name": "hygiene_score",
        "definition": HYGIENE_DEFINITION,
        "available": True,
        "reason": None,
        "weights": dict(SEVERITY_WEIGHT),
        "org": None if len(opp) == 0 else _score(pen.mean()),
        "opportunities": int(len(opp)),
        "flagged": int((pen > 0).sum()),
        "by_team": {k: d["score"] for k, d in teams.items()},
        "by_owner": {k: d["score"] for k, d in owners.items()},
        "teams": teams,
        "owners": owners,
    }
