"""Process compliance: how closed deals moved, as rates (never to-dos).

Findings on closed deals outside to-do scope (every rule but the close-out ones, and close-out
rules on deals closed before the fix window) are process history. Here they become rates over
the closed deals each rule could judge: per rule, per owner, per team and per close quarter.
"""

from __future__ import annotations

from dataclasses import astuple

import numpy as np
import pandas as pd

from auditor.metric_types import OwnerRate, ProcessCompliance, Rate, RuleRate
from auditor.metrics.base import MetricInputs, ratio
from auditor.results import FLAGGED, PASSED, AuditResult

PROCESS_COMPLIANCE = (
    "Process history: for closed deals outside to-do scope, the share of rule checks that found "
    "a violation (how the deals moved, e.g. skipped qualification), per rule, owner, team and "
    "close quarter. A check is one rule on one closed deal it applies to and could evaluate. "
    "Nothing here is a to-do: these deals are closed."
)


def _rates(checked: np.ndarray, flagged: np.ndarray, keys: np.ndarray) -> dict[str, Rate]:
    codes, uniq = pd.factorize(keys, sort=True)
    c = np.bincount(codes, weights=checked, minlength=len(uniq))
    f = np.bincount(codes, weights=flagged, minlength=len(uniq))
    return {
        str(k): Rate(int(c[i]), int(f[i]), ratio(f[i], c[i]))
        for i, k in enumerate(uniq)
        if c[i]
    }


def process_compliance(
    mi: MetricInputs, result: AuditResult, owners: pd.DataFrame
) -> ProcessCompliance:
    window = result.context.audit.fix_window_days
    checks = result.checks
    if checks is None or checks.shape[0] != mi.n:
        return ProcessCompliance(PROCESS_COMPLIANCE, window, findings=0, checks=0, rate=None)
    closeout = np.array([bool(r.closeout) for r in result.rules], dtype=bool)
    todo = result.todo_scope[:, None] | (result.closeout_scope[:, None] & closeout[None, :])
    scope = ~todo
    ev = (checks >= PASSED) & scope
    fl = (checks == FLAGGED) & scope
    by_rule = {}
    for j, r in enumerate(result.rules):
        n_ev, n_fl = int(ev[:, j].sum()), int(fl[:, j].sum())
        if n_ev:
            by_rule[r.code] = Rate(n_ev, n_fl, ratio(n_fl, n_ev))
    per_rec_ev = ev.sum(axis=1)
    per_rec_fl = fl.sum(axis=1)
    opp = mi.opp
    owner = opp["owner_id"].astype(object).fillna("(none)").astype(str).to_numpy()
    team_of = dict(zip(owners["id"].astype(str), owners["team"].astype(object), strict=False))
    team = np.array(
        [t if isinstance(t, str) else "(no team)" for t in map(team_of.get, owner)], dtype=object
    )
    close = opp["close_date"]
    quarter = close.dt.to_period("Q").astype(str).where(close.notna(), "(no close date)")
    has = per_rec_ev > 0
    by_owner = _rates(per_rec_ev[has], per_rec_fl[has], owner[has]) if has.any() else {}
    by_team = _rates(per_rec_ev[has], per_rec_fl[has], team[has]) if has.any() else {}
    by_q = (
        _rates(per_rec_ev[has], per_rec_fl[has], quarter.to_numpy(dtype=object)[has])
        if has.any()
        else {}
    )
    names = dict(zip(owners["id"].astype(str), owners["name"].astype(object), strict=False))
    owner_list = sorted(
        (
            OwnerRate(k, names.get(k) if isinstance(names.get(k), str) else k, *astuple(v))
            for k, v in by_owner.items()
        ),
        key=lambda d: (-(d.rate or 0), d.owner),
    )
    rule_list = [
        RuleRate(r.code, r.name, *astuple(by_rule[r.code]))
        for r in result.rules
        if r.code in by_rule
    ]
    return ProcessCompliance(
        PROCESS_COMPLIANCE,
        window,
        findings=int(fl.sum()),
        checks=int(ev.sum()),
        rate=ratio(int(fl.sum()), int(ev.sum())),
        by_rule=by_rule,
        by_owner=by_owner,
        by_team=by_team,
        by_close_quarter=by_q,
        by_rule_list=rule_list,
        by_owner_list=owner_list,
    )
