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


def _rates(checked: np.ndarray, flagged: np.ndarray, codes: np.ndarray,
           labels: list[str]) -> dict[str, Rate]:
    """Rates per group: ``codes`` index ``labels``; groups in the labels' text order."""
    k = len(labels)
    c = np.bincount(codes, weights=checked, minlength=k)
    f = np.bincount(codes, weights=flagged, minlength=k)
    order = sorted(range(k), key=labels.__getitem__)
    return {labels[i]: Rate(int(c[i]), int(f[i]), ratio(f[i], c[i])) for i in order if c[i]}


def _regroup(codes: np.ndarray, labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """Merge codes whose labels are equal (e.g. owners of the same team)."""
    uniq = sorted(set(labels))
    at = {t: i for i, t in enumerate(uniq)}
    remap = np.array([at[t] for t in labels], dtype=np.int64)
    return (remap[codes] if len(remap) else codes), uniq


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
    has = per_rec_ev > 0
    by_owner: dict[str, Rate] = {}
    by_team: dict[str, Rate] = {}
    by_q: dict[str, Rate] = {}
    if has.any():
        # group keys per distinct value (a few thousand owners, a few dozen quarters), never
        # per record
        ev_h, fl_h = per_rec_ev[has], per_rec_fl[has]
        o_codes, o_uniq = pd.factorize(opp["owner_id"][has], use_na_sentinel=False)
        owner_keys = ["(none)" if pd.isna(k) else str(k) for k in o_uniq]
        o_codes = np.asarray(o_codes, dtype=np.int64)
        by_owner = _rates(ev_h, fl_h, o_codes, owner_keys)
        team_of = dict(zip(owners["id"].astype(str), owners["team"].astype(object), strict=False))
        teams = [t if isinstance(t, str) else "(no team)" for t in map(team_of.get, owner_keys)]
        by_team = _rates(ev_h, fl_h, *_regroup(o_codes, teams))
        close = opp["close_date"].to_numpy(dtype="datetime64[M]")[has]
        month = close.astype(np.int64)
        quarter = np.where(np.isnat(close), np.iinfo(np.int64).min, month // 3)
        q_codes, q_uniq = pd.factorize(quarter)
        q_labels = [
            "(no close date)" if q == np.iinfo(np.int64).min
            else f"{1970 + int(q) // 4}Q{int(q) % 4 + 1}"
            for q in q_uniq
        ]
        by_q = _rates(ev_h, fl_h, np.asarray(q_codes, dtype=np.int64), q_labels)
    names = dict(zip(owners["id"].astype(str), owners["name"].astype(object), strict=False))
    owner_list = sorted(
        (
            OwnerRate(k, names.get(k) if isinstance(names.get(k), str) else k, v.checked,
                      v.flagged, v.rate)
            for k, v in by_owner.items()
        ),
        key=lambda d: (-(d.rate or 0), d.owner),
    )
    rule_list = [
        RuleRate(r.code, r.name, *astuple(by_rule[r.code]))  # 19 rules: astuple is fine
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
