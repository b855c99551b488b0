"""The hygiene score: one 0–100 number per org, team and owner, over the checks that apply.

A *check* is one rule judging one record. It counts when the rule applies to the record's
state and could evaluate it (``AuditResult.checks``), and only in to-do scope: open deals, and
close-out rules (CL01–CL03) on deals closed within the fix window. How long-closed deals moved
is process history, reported as rates, not as a score. Suppressed findings count as passed.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd

from auditor.metric_types import GroupScore, HygieneScore, OwnerScore, ScoreBasis
from auditor.na import na_to_none
from auditor.results import FLAGGED, NOT_APPLICABLE, PASSED, AuditResult
from auditor.snapshot import Snapshot

_GROUP_FIELDS = tuple(f.name for f in fields(GroupScore))
SEVERITY_WEIGHT = {"error": 1.0, "warning": 0.5, "info": 0.1}
#: weight of a finding whose severity is not one of the three (a misconfigured plugin rule)
UNKNOWN_SEVERITY_WEIGHT = 0.5
NO_OWNER = "(none)"
NO_TEAM = "(no team)"

HYGIENE_DEFINITION = (
    "100 × (1 − flagged weight / checked weight) over the checks in to-do scope: one check per "
    "rule and record it applies to and could evaluate (open deals; close-out rules CL01–CL03 "
    "also on deals closed within the fix window). Each check weighs its rule's severity (error "
    "1.0, warning 0.5, info 0.1); suppressed findings count as passed. The basis says how many "
    "checks on how many deals, and which share of the applicable checks could be evaluated."
)


def _weights(result: AuditResult) -> np.ndarray:
    return np.array(
        [SEVERITY_WEIGHT.get(str(r.severity), UNKNOWN_SEVERITY_WEIGHT) for r in result.rules],
        dtype=float,
    )


def check_matrices(result: AuditResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per record: (checked weight, flagged weight, applicable check count) in to-do scope,
    plus evaluated check count as a fourth column of the count matrix."""
    checks = result.checks
    if checks is None:  # a result built without the engine: no checks, no score
        return np.zeros(0), np.zeros(0), np.zeros((0, 2), dtype=np.int64)
    n = checks.shape[0]
    closeout = np.array([bool(r.closeout) for r in result.rules], dtype=bool)
    todo, closeout_scope = result.todo_scope, result.closeout_scope
    w = _weights(result)
    # rule by rule: no (records × rules) float temporaries (150 MiB each at 1M records)
    den, num = np.zeros(n), np.zeros(n)
    counts = np.zeros((n, 2), dtype=np.int64)
    for j in range(checks.shape[1]):
        col = np.ascontiguousarray(checks[:, j])
        in_scope = (todo | closeout_scope) if closeout[j] else todo
        evaluated = (col >= PASSED) & in_scope
        den += evaluated * w[j]
        num += ((col == FLAGGED) & in_scope) * w[j]
        counts[:, 0] += (col != NOT_APPLICABLE) & in_scope
        counts[:, 1] += evaluated
    return den, num, counts


def _score(num: float, den: float) -> float | None:
    return None if den <= 0 else round(100.0 * (1.0 - float(num) / float(den)), 1)


def basis_text(checks: int, deals: int, share: float | None) -> str:
    """"over 1,234 checks on 456 deals (89% of applicable checks evaluable)"."""
    if checks == 0:
        return "no check applies and could be evaluated"
    text = f"over {checks:,} check{'s' if checks != 1 else ''} on {deals:,} deal"
    text += "s" if deals != 1 else ""
    if share is not None and share < 1:
        text += f" ({round(share * 100)}% of applicable checks evaluable)"
    return text


def _group(
    den: np.ndarray, num: np.ndarray, counts: np.ndarray, todo: np.ndarray, codes: np.ndarray,
    keys: list[str],
) -> dict[str, GroupScore]:
    k = len(keys)
    size = np.bincount(codes, minlength=k)
    d = np.bincount(codes, weights=den, minlength=k)
    f = np.bincount(codes, weights=num, minlength=k)
    app = np.bincount(codes, weights=counts[:, 0], minlength=k)
    ev = np.bincount(codes, weights=counts[:, 1], minlength=k)
    deals = np.bincount(codes, weights=(counts[:, 1] > 0), minlength=k)
    flagged = np.bincount(codes, weights=todo, minlength=k)
    out = {}
    for i in np.argsort(np.asarray(keys, dtype=object), kind="stable"):
        if size[i]:
            share = round(ev[i] / app[i], 4) if app[i] else None
            out[keys[i]] = GroupScore(
                score=_score(f[i], d[i]),
                opportunities=int(size[i]),
                flagged=int(flagged[i]),
                checks=int(ev[i]),
                applicable_checks=int(app[i]),
                deals_checked=int(deals[i]),
                checked_weight=round(float(d[i]), 4),
                flagged_weight=round(float(f[i]), 4),
                basis=basis_text(int(ev[i]), int(deals[i]), share),
            )
    return out


def hygiene_scores(snap: Snapshot, result: AuditResult) -> HygieneScore:
    """Org, team and owner hygiene scores with their basis; None where no check counts."""
    opp = snap.opportunities
    den, num, counts = check_matrices(result)
    if len(den) != len(opp):
        den, num = np.zeros(len(opp)), np.zeros(len(opp))
        counts = np.zeros((len(opp), 2), dtype=np.int64)
    todo = num > 0  # records with a to-do finding (suppressed ones do not count)
    # factorize the owner column once; teams are looked up per distinct owner, not per row
    owner_codes, owner_keys = pd.factorize(opp["owner_id"], use_na_sentinel=False)
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
    owner_codes = np.asarray(owner_codes, dtype=np.int64)
    teams = _group(den, num, counts, todo, team_idx[owner_codes], team_keys)
    owners = {
        # a shallow copy of the fields (asdict deep-copies: seconds for thousands of owners)
        k: OwnerScore(
            **{f: getattr(g, f) for f in _GROUP_FIELDS},
            name=na_to_none(name_of.get(k)),
            team=na_to_none(team_of.get(k)),
        )
        for k, g in _group(den, num, counts, todo, owner_codes, owner_keys).items()
    }
    applicable = int(counts[:, 0].sum()) if len(counts) else 0
    evaluated = int(counts[:, 1].sum()) if len(counts) else 0
    share = round(evaluated / applicable, 4) if applicable else None
    deals = int((counts[:, 1] > 0).sum()) if len(counts) else 0
    return HygieneScore(
        definition=HYGIENE_DEFINITION,
        # a score from few evaluable checks looks better than it is: say how much it covers
        checks_evaluated_share=share,
        basis=ScoreBasis(evaluated, applicable, deals, basis_text(evaluated, deals, share)),
        weights=dict(SEVERITY_WEIGHT),
        org=_score(float(num.sum()), float(den.sum())) if len(opp) else None,
        opportunities=int(len(opp)),
        flagged=int(todo.sum()),
        teams=teams,
        owners=owners,
    )


def combined(members: list[GroupScore]) -> tuple[float | None, str]:
    """Score and basis of several owners together (a manager's roll-up), from their weights."""
    den = sum(m.checked_weight for m in members)
    num = sum(m.flagged_weight for m in members)
    checks = sum(m.checks for m in members)
    app = sum(m.applicable_checks for m in members)
    deals = sum(m.deals_checked for m in members)
    return _score(num, den), basis_text(checks, deals, round(checks / app, 4) if app else None)
