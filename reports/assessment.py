"""The consultant assessment: findings, worst areas and recommendations derived from them.

Recommendations are derived, not written by hand per client: one per rule with findings (its
"how to fix", prioritised by severity and how widespread it is), one per coverage gap (what the
source must provide so the audit can see more), and one each for rejected rows, unmapped stages
and owners far below the org's score.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from auditor.derived import positions
from auditor.results import SEVERITY_RANK, AuditRun
from reports.context import (
    amount_at_risk,
    by_owner,
    by_team,
    currency_by_id,
    fix_now_mask,
    owner_table,
    violation_rows,
)
from reports.format import is_number, money, number, oneline, pct, plural, rule_label, sentence

PRIORITY_ORDER = {"High": 0, "Medium": 1, "Low": 2}


def _priority(severity: str, rate: float | None) -> str:
    r = rate or 0.0
    if severity == "error" and r >= 0.05 or r >= 0.25:
        return "High"
    if severity == "error" or r >= 0.10 or severity == "warning" and r >= 0.05:
        return "Medium"
    return "Low"


def findings(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    """Rules with findings, most serious and most widespread first."""
    out = [dict(r, priority=_priority(r["severity"], r["rate"])) for r in ctx["by_rule"]]
    out = [r for r in out if r["count"]]
    out.sort(
        key=lambda r: (
            PRIORITY_ORDER[r["priority"]],
            SEVERITY_RANK.get(r["severity"], 1),
            -(r["rate"] or 0),
        )
    )
    return out


def worst_stages(run: AuditRun) -> list[dict[str, Any]]:
    """Findings per current stage, and the share of that stage's deals that are flagged."""
    v = run.result.violations
    if not len(v):
        return []
    opp = run.snapshot.opportunities
    total = opp["stage"].astype(str).value_counts()
    flagged = v.drop_duplicates("opportunity_id")["stage"].astype(str).value_counts()
    count = v["stage"].astype(str).value_counts()
    rows = []
    for stage, n in count.items():
        deals = int(flagged.get(stage, 0))
        all_ = int(total.get(stage, 0))
        rows.append(
            {
                "stage": stage,
                "findings": int(n),
                "deals": deals,
                "rate": deals / all_ if all_ else None,
            }
        )
    rows.sort(key=lambda r: (-(r["rate"] or 0), r["stage"]))
    top = max((r["rate"] or 0 for r in rows), default=0)
    for r in rows:
        r["width"] = round(100 * (r["rate"] or 0) / top, 1) if top else 0.0
    return rows


def rule_money(run: AuditRun) -> dict[str, float]:
    """Per rule: the open amount of the deals it flags to fix now (all currencies summed —
    for ranking only; amounts shown to the reader keep their currency)."""
    v = run.result.violations
    if not len(v):
        return {}
    fix = fix_now_mask(run).to_numpy()
    pos = violation_rows(run)
    opp = run.snapshot.opportunities
    amount = np.append(opp["amount"].to_numpy(dtype=float, na_value=0.0), 0.0)
    is_open = np.append(opp["is_open"].to_numpy(dtype=bool, na_value=False), False)
    frame = pd.DataFrame({"rule": v["rule_code"].astype(str).to_numpy(), "pos": pos})
    frame = frame[fix & is_open[pos]].drop_duplicates()
    frame["amount"] = amount[frame["pos"].to_numpy()]
    return {str(k): float(x) for k, x in frame.groupby("rule")["amount"].sum().items()}


def recommendations(run: AuditRun, ctx: dict[str, Any], found: list[dict]) -> list[dict]:
    """One recommendation per cause: rules sharing a fix are merged, coverage gaps are merged
    by reason; ranked by priority, then by the open money and the number of findings."""
    recs: list[dict[str, Any]] = []
    money_of = rule_money(run)
    by_fix: dict[str, list[dict[str, Any]]] = {}
    for f in found:
        by_fix.setdefault(sentence(f["fix"]) or f["code"], []).append(f)
    for fix, rules in by_fix.items():
        first = rules[0]
        count = sum(r["count"] for r in rules)
        names = ", ".join(f"{r['code']} {rule_label(r['name'])}" for r in rules)
        at_stake = sum(money_of.get(r["code"], 0.0) for r in rules)
        recs.append(
            {
                "priority": min((r["priority"] for r in rules), key=PRIORITY_ORDER.get),
                "title": f"{names}: {sentence(first['summary']) or 'fix the findings'}",
                "action": fix if fix != first["code"] else "Fix the flagged deals in the CRM.",
                "why": sentence(first["why"]),
                "evidence": "; ".join(
                    f"{r['code']}: {plural(r['count'], 'finding')} on "
                    f"{plural(r['evaluated'], 'evaluated record')} ({pct(r['rate'])})"
                    for r in rules
                )
                + ".",
                "money": at_stake,
                "count": count,
            }
        )
    gaps: dict[str, dict[str, Any]] = {}
    for g in ctx["coverage"]["gaps"]:
        for r in g["reasons"]:
            m = gaps.setdefault(oneline(r["reason"]), {"rules": [], "count": 0})
            m["rules"].append(str(g["rule_code"]))
            m["count"] = max(m["count"], int(r["count"] or 0))
    if gaps:
        ordered = sorted(gaps.items(), key=lambda kv: (-kv[1]["count"], kv[0]))
        recs.append(
            {
                "priority": "Medium",
                "title": "Give the audit the data it cannot see",
                "action": "Provide in the source (or the export): "
                + "; ".join(
                    f"{reason} (rules {', '.join(m['rules'])}; {number(m['count'])} records)"
                    for reason, m in ordered[:8]
                )
                + (f"; and {len(ordered) - 8} more (see Coverage)" if len(ordered) > 8 else "")
                + ".",
                "why": "A rule that cannot evaluate a record cannot flag it; the score there "
                "looks better than the process is.",
                "evidence": f"{plural(len(ctx['coverage']['gaps']), 'rule')} could not judge "
                "every record.",
                "money": 0.0,
                "count": sum(m["count"] for m in gaps.values()),
            }
        )
    facts = ctx["facts"]
    if facts.get("unmapped_stages"):
        names = ", ".join(oneline(s) for s in facts["unmapped_stages"]) + (
            f" and {number(facts['unmapped_more'])} more (run.json lists them all)"
            if facts.get("unmapped_more") else "")
        recs.append(
            {
                "priority": "High",
                "title": "Map every CRM stage onto the common stage model",
                "action": "Add these stages to the stage map in the config "
                f"(source.stage_map): {names}.",
                "why": "Deals in unmapped stages cannot be placed in the process, so stage rules "
                "and conversion metrics skip them.",
                "evidence": f"{plural(facts.get('unmapped_records'), 'record')}.",
            }
        )
    if facts.get("rejected_rows"):
        recs.append(
            {
                "priority": "Medium",
                "title": "Fix the source rows that could not be read",
                "action": "Correct the rejected rows listed in the run facts at the source.",
                "why": "Rejected rows are left out of the audit and the metrics entirely.",
                "evidence": f"{plural(facts['rejected_rows'], 'row')} rejected.",
            }
        )
    score = ctx["score"]
    if is_number(score):
        known = owner_table(run).index
        laggards = [
            o
            for o in ctx["by_owner"]
            if is_number(o["score"])
            and o["score"] < score - 10
            and o["owner_id"] in known
            and o["owner"] != o["owner_id"]  # a named owner, not a bare id or "(none)"
        ]
        if laggards:
            names = ", ".join(f"{o['owner']} ({number(o['score'])})" for o in laggards[:5])
            recs.append(
                {
                    "priority": "Medium",
                    "title": "Coach the owners furthest below the team",
                    "action": f"Walk through the digest with {names}; agree a date to clear it.",
                    "why": "A few owners usually hold most of the hygiene debt; coaching them "
                    "moves the score fastest.",
                    "evidence": f"Org score {number(score)}; these owners are more than 10 "
                    "points below.",
                }
            )
    if not recs:
        recs.append(
            {
                "priority": "Low",
                "title": "Keep the process as it is",
                "action": "Run the audit nightly and send owner digests so it stays clean.",
                "why": "No rule found a problem in this snapshot.",
                "evidence": f"{plural(facts.get('records'), 'record')} audited.",
            }
        )
    recs.sort(
        key=lambda r: (PRIORITY_ORDER[r["priority"]], -r.get("money", 0.0), -r.get("count", 0))
    )
    return recs


def at_risk_amount(run: AuditRun) -> float | None:
    """Open pipeline amount on deals with at least one finding."""
    v = run.result.violations
    opp = run.snapshot.opportunities
    if not len(v):
        return 0.0
    flagged = np.zeros(len(opp), dtype=bool)
    pos = positions(opp["id"], v["opportunity_id"])
    flagged[pos[pos >= 0]] = True
    open_ = opp["is_open"].to_numpy(dtype=bool, na_value=False)
    sel = opp.loc[flagged & open_]
    if sel.loc[sel["amount"].notna(), "currency"].dropna().nunique() > 1:
        return None  # amounts in several currencies are never added
    amounts = sel["amount"].to_numpy(dtype=float, na_value=np.nan)
    return float(np.nansum(amounts))


def appendix(run: AuditRun, limit: int) -> tuple[list[dict[str, Any]], int]:
    v = run.result.violations
    if not len(v) or limit == 0:
        return [], int(len(v))
    rank = v["severity"].astype(str).map(SEVERITY_RANK).fillna(1)
    later = ~fix_now_mask(run)  # to-dos first, process history after
    ordered = v.assign(_h=later, _r=rank).sort_values(
        ["_h", "_r", "rule_code", "owner_id", "opportunity_id"], kind="stable"
    )
    sub = ordered.head(limit).drop(columns=["_h", "_r"]).astype(object)
    names = owner_table(run)["name"]
    rows = sub.where(sub.notna(), None).to_dict(orient="records")
    currency = currency_by_id(run, {str(r["opportunity_id"]) for r in rows})
    for r in rows:
        r["currency"] = currency.get(str(r["opportunity_id"]))
        oid = None if r["owner_id"] is None else str(r["owner_id"])
        r["owner"] = oneline(names.get(oid)) or oid or ""
        r["stage"] = None if r["stage"] is None else str(r["stage"])
    return rows, int(len(v))


def assessment_context(run: AuditRun, ctx: dict[str, Any]) -> dict[str, Any]:
    """The manager-report context plus findings, worst areas, recommendations, appendix."""
    found = findings(ctx)
    rows, total = appendix(run, run.config.report.appendix_max_rows)
    records = ctx["facts"].get("records") or 0
    owners = [o for o in by_owner(run) if is_number(o["score"])]
    owners.sort(key=lambda o: (o["score"], o["owner"]))
    open_amount = run.metrics.counts.open_amount
    risk = at_risk_amount(run)
    by_currency = amount_at_risk(run)
    return {
        **ctx,
        # the score has its own page; its per-owner table would fill three printed pages;
        # process compliance has its own short list under Findings
        "metrics": [
            m
            for m in ctx["metrics"]
            if m.get("key") not in ("hygiene_score", "process_compliance")
        ],
        "title": f"{ctx['title']}: assessment",
        "findings": found,
        "flagged_share": ctx["flagged_deals"] / records if records else None,
        "at_risk": " + ".join(money(r["amount"], r["currency"]) for r in by_currency)
        or money(0),
        "at_risk_share": risk / open_amount
        if is_number(risk) and is_number(open_amount) and open_amount
        else None,
        "worst_owners": owners[:5],
        "worst_teams": sorted(
            (t for t in by_team(run) if is_number(t["score"])), key=lambda t: t["score"]
        )[:5],
        "worst_stages": worst_stages(run)[:6],
        "recommendations": recommendations(run, ctx, found),
        "appendix": rows,
        "appendix_total": total,
    }
