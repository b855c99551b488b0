"""The hygiene score: one 0–100 number per org, team and owner from the audit findings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from auditor.derived import id_index
from auditor.results import AuditResult
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
        pos = id_index(snap).get_indexer(v["opportunity_id"].astype(object))
        ok = pos >= 0
        np.maximum.at(pen, pos[ok], w[ok])
    return pen


def _score(mean_penalty: float) -> float:
    return round(100.0 * (1.0 - float(mean_penalty)), 1)


def _groups(pen: np.ndarray, codes: np.ndarray, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Score, size and flagged count per group; ``codes`` index into ``keys`` (bincount)."""
    k = len(keys)
    size = np.bincount(codes, minlength=k)
    flagged = np.bincount(codes, weights=pen > 0, minlength=k)
    total = np.bincount(codes, weights=pen, minlength=k)
    out = {}
    for i in np.argsort(np.asarray(keys, dtype=object), kind="stable"):
        if size[i]:
            out[keys[i]] = {
                "score": _score(total[i] / size[i]),
                "opportunities": int(size[i]),
                "flagged": int(flagged[i]),
            }
    return out


def hygiene_scores(snap: Snapshot, result: AuditResult) -> dict[str, Any]:
    """Org, team and owner hygiene scores; ``org`` is None for an empty Snapshot."""
    opp = snap.opportunities
    pen = opportunity_penalty(snap, result)
    # factorize the owner column once; teams are looked up per distinct owner, not per row
    owner_codes, owner_keys = pd.factorize(opp["owner_id"].astype(object), use_na_sentinel=False)
    owner_keys = [NO_OWNER if pd.isna(k) else str(k) for k in owner_keys]
    o = snap.owners.drop_duplicates("id")
    o = o[o["id"].notna()]
    team_of = dict(zip(o["id"].astype(str), o["team"].astype(object), strict=True))
    name_of = dict(zip(o["id"].astype(str), o["name"].astype(object), strict=True))
    team_per_owner = [team_of.get(k) for k in owner_keys]
    team_names = [NO_TEAM if t is None or pd.isna(t) else str(t) for t in team_per_owner]
    team_keys = sorted(set(team_names))
    position = {t: i for i, t in enumerate(team_keys)}
    team_idx = np.array([position[t] for t in team_names], dtype=np.int64)
    teams = _groups(pen, team_idx[owner_codes], team_keys)
    owners = _groups(pen, owner_codes, owner_keys)
    for k, d in owners.items():
        name, team = name_of.get(k), team_of.get(k)
        d["name"] = None if name is None or pd.isna(name) else str(name)
        d["team"] = None if team is None or pd.isna(team) else str(team)
    cov = result.coverage
    checks = int(cov["records"].sum()) if len(cov) else 0
    share = round(int(cov["evaluated"].sum()) / checks, 4) if checks else None
    return {
        "name": "hygiene_score",
        "definition": HYGIENE_DEFINITION,
        # a score from few evaluable checks looks better than it is: say how much it covers
        "checks_evaluated_share": share,
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


def group_scores(
    snap: Snapshot, result: AuditResult, group_of_owner: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Scores of owner groups (e.g. a manager's direct reports), computed exactly as the
    team scores of :func:`hygiene_scores` are: over the group's opportunities, not by averaging
    rounded owner scores. ``group_of_owner`` maps owner id → group key (one group per owner).
    """
    opp = snap.opportunities
    pen = opportunity_penalty(snap, result)
    keys = sorted(set(group_of_owner.values()))
    if not keys or not len(opp):
        return {}
    position = {k: i for i, k in enumerate(keys)}
    # factorize once; groups are looked up per distinct owner, not per row
    codes, owners = pd.factorize(opp["owner_id"].astype(object), use_na_sentinel=False)
    per_owner = np.array(
        [-1 if pd.isna(o) else position.get(group_of_owner.get(str(o)), -1) for o in owners],
        dtype=np.int64,
    )
    idx = per_owner[codes] if len(per_owner) else np.full(len(opp), -1, dtype=np.int64)
    inside = idx >= 0
    return _groups(pen[inside], idx[inside], keys)
