"""What the templates see: plain Python values built from an AuditRun (no DataFrames).

Reports read only the AuditRun (config, snapshot, result, metrics, history, facts); they never
recompute a rule. Grouping is vectorized; only the capped lists become Python dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from datetime import date
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from auditor.derived import positions
from auditor.metrics.hygiene import combined
from auditor.na import na_to_none
from auditor.results import SEVERITY_RANK, AuditRun
from auditor.stages import STAGE_LABELS
from reports.format import human, is_number, oneline
from reports.metric_view import metric_views, periods_line

T = TypeVar("T")

NO_OWNER = "(none)"
NO_TEAM = "(no team)"
#: owners listed in the appendix (all are in violations.csv and the explorer)
MAX_OWNERS = 50
#: the manager e-mail stays short whatever the org size: these caps keep it under Gmail's clip
EMAIL_TOP_DEALS = 10
EMAIL_MAX_TEAMS = 12
EMAIL_MAX_RULES = 12
ROLLUP_MAX_MEMBERS = 40


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    obj = frame.astype(object)
    return obj.where(obj.notna(), None).to_dict(orient="records")


def _cached(run: AuditRun, key: str, build: Callable[[], T]) -> T:
    """Memoize per run: digests for a thousand owners must not rebuild shared tables."""
    return run.memo.get(("reports", key), build)


def rule_docs(run: AuditRun) -> dict[str, dict[str, Any]]:
    return _cached(run, "rule_docs", lambda: {r.code: r.describe() for r in run.result.rules})


def owner_table(run: AuditRun) -> pd.DataFrame:
    return _cached(run, "owner_table", lambda: _owner_table(run))


def _owner_table(run: AuditRun) -> pd.DataFrame:
    """Owners indexed by id (str): name, email, team, manager_id, active; NA → None."""
    owners = run.snapshot.owners
    cols = ("name", "email", "team", "manager_id", "active")
    # object dtype on purpose: pandas would infer "str" and turn None back into NaN
    data = {c: [na_to_none(x) for x in owners[c].tolist()] for c in cols}
    out = pd.DataFrame(
        data, index=pd.Index(owners["id"].astype(str).tolist(), name="id"), dtype=object
    )
    return out[~out.index.duplicated()]


def labels(run: AuditRun) -> dict[str, str]:
    """Display names for keys that appear in metrics: owner ids and stage names."""
    out = dict(STAGE_LABELS)
    names = owner_table(run)["name"]
    out.update({k: oneline(v) for k, v in names.items() if v})
    return out


def _severity_rank(v: pd.DataFrame) -> pd.Series:
    return v["severity"].astype(str).map(SEVERITY_RANK).fillna(1).astype(int)


def worst_deals(run: AuditRun, v: pd.DataFrame, limit: int) -> tuple[list[dict], int]:
    """Flagged deals, worst first: worst severity, then most findings, then largest amount.

    Returns (up to ``limit`` deals each with its findings, number of flagged deals).
    """
    if not len(v):
        return [], 0
    docs = rule_docs(run)
    new_fps = _new_fingerprints(run)
    keys = _deal_keys(run).loc[v.index]
    code = keys["code"].to_numpy()
    first = ~keys["code"].duplicated().to_numpy()  # integer codes: no text hashing
    heads = keys[first]
    order = np.lexsort((heads["code"].to_numpy(), -heads["deal_amount"].to_numpy(),
                        -heads["deal_n"].to_numpy(), heads["deal_rank"].to_numpy()))
    top_codes = heads["code"].to_numpy()[order[:limit]]
    top = heads["deal"].to_numpy()[order[:limit]].tolist()
    chosen = np.isin(code, top_codes)
    sub = v[chosen]
    sub = sub.iloc[np.argsort(keys["rank"].to_numpy()[chosen], kind="stable")]
    owners = owner_table(run)
    cur = row_currency(run).loc[sub.index]
    currency = dict(zip(sub["opportunity_id"].astype(str), cur, strict=True))
    deals: dict[str, dict[str, Any]] = {}
    for row in _records(sub):
        did = str(row["opportunity_id"])
        deal = deals.get(did)
        if deal is None:
            oid = None if row["owner_id"] is None else str(row["owner_id"])
            owner = owners["name"].get(oid) if oid is not None else None
            deal = deals[did] = {
                "id": did,
                "name": row["opportunity_name"] or did,
                "account": row["account_name"],
                "owner_id": oid,
                "owner": owner or oid or NO_OWNER,
                "stage": None if row["stage"] is None else str(row["stage"]),
                "amount": row["amount"],
                "currency": currency.get(did),
                "url": row["url"],
                "severity": row["severity"],
                "findings": [],
            }
        doc = docs.get(row["rule_code"], {})
        deal["findings"].append(
            {
                "rule_code": row["rule_code"],
                "rule_name": row["rule_name"],
                "severity": row["severity"],
                "message": human(row["message"]),
                "fix": human(doc.get("fix", "")),
                "new": row["fingerprint"] in new_fps,
            }
        )
    return [deals[d] for d in top if d in deals], int(len(heads))


def _deal_keys(run: AuditRun) -> pd.DataFrame:
    """Per violation row: its severity rank and its deal's worst rank, finding count, amount."""

    def build() -> pd.DataFrame:
        v = run.result.violations
        deal = v["opportunity_id"].astype(str)
        rank = _severity_rank(v)
        amount = v["amount"].astype("Float64").fillna(0.0).astype(float)
        # deals as integer codes in text order (the tie-break): grouping and sorting on ints
        code, _ = pd.factorize(deal, sort=True)
        g = pd.DataFrame({"code": code, "rank": rank, "amount": amount}).groupby("code")
        return pd.DataFrame(
            {
                "deal": deal,
                "code": code,
                "rank": rank,
                "deal_rank": g["rank"].transform("min"),
                "deal_n": g["rank"].transform("size"),
                "deal_amount": g["amount"].transform("max"),
            },
            index=v.index,
        )

    return _cached(run, "deal_keys", build)


def currency_by_id(run: AuditRun, ids: set[str]) -> dict[str, str | None]:
    """The currency code of each of a few opportunities (for the capped deal lists)."""
    opp = run.snapshot.opportunities
    pos = positions(opp["id"], pd.Series(sorted(ids), dtype=object))
    sub = opp.iloc[pos[pos >= 0]]
    cur = sub["currency"].astype(object)
    return {
        str(i): (None if pd.isna(c) else str(c))
        for i, c in zip(sub["id"].astype(str), cur, strict=True)
    }


def violation_rows(run: AuditRun) -> np.ndarray:
    """Per violation row: the position of its opportunity in the snapshot (-1 when absent)."""
    return _cached(
        run,
        "violation_rows",
        lambda: positions(
            run.snapshot.opportunities["id"], run.result.violations["opportunity_id"]
        ),
    )


def row_currency(run: AuditRun) -> pd.Series:
    """Per violation row: its opportunity's currency code (None when unknown), found through
    the positions of :func:`violation_rows` (no lookup of ids per deal list)."""

    def build() -> pd.Series:
        pos = violation_rows(run)
        cur = run.snapshot.opportunities["currency"].astype(object)
        vals = cur.where(cur.notna(), None).to_numpy()[np.maximum(pos, 0)] if len(pos) else []
        out = pd.Series(vals, index=run.result.violations.index, dtype=object)
        return out.where(pos >= 0, None) if len(pos) else out

    return _cached(run, "row_currency", build)


def metrics_dict(run: AuditRun) -> dict[str, Any]:
    """metrics.json's content, built once per run (the report, the score basis and
    metrics.json all read it; converting the typed metrics took seconds at 1M)."""
    return _cached(run, "metrics_dict", lambda: run.metrics.to_dict())


def fix_now_mask(run: AuditRun) -> pd.Series:
    """Per violation row: is it a to-do (fix now)? Since #14 the engine splits the findings:
    ``result.violations`` holds the to-dos, ``result.process`` the process history, so every
    violation row is one; a ``fix_now`` column, when a plugin engine adds one, still decides."""

    def build() -> pd.Series:
        v = run.result.violations
        if "fix_now" in v.columns:
            return v["fix_now"].astype("boolean").fillna(False).astype(bool)
        return pd.Series(True, index=v.index, dtype=bool)

    return _cached(run, "fix_now", build)


def process_findings(run: AuditRun) -> pd.DataFrame:
    """Process history: findings about how closed deals moved (no to-dos)."""
    p = getattr(run.result, "process", None)
    return p if p is not None else run.result.violations.iloc[:0]


def amount_at_risk(run: AuditRun) -> list[dict[str, Any]]:
    """Open amount of the deals with a fix-now finding, per currency (largest first)."""

    def build() -> list[dict[str, Any]]:
        v = run.result.violations
        if not len(v):
            return []
        pos = violation_rows(run)[fix_now_mask(run).to_numpy()]
        opp = run.snapshot.opportunities
        rows = np.unique(pos[pos >= 0])
        sub = opp.iloc[rows]
        sub = sub[sub["is_open"].astype("boolean").fillna(False).to_numpy(dtype=bool)]
        if not len(sub):
            return []
        frame = pd.DataFrame(
            {
                "currency": sub["currency"].astype(object).fillna(""),
                "amount": sub["amount"].astype("Float64").fillna(0.0).astype(float),
                "unknown": sub["amount"].isna(),
            }
        )
        agg = frame.groupby("currency").agg(
            amount=("amount", "sum"), deals=("amount", "size"), no_amount=("unknown", "sum")
        )
        agg = agg.sort_values("amount", ascending=False, kind="stable")
        return [
            {
                "currency": str(c) or None,
                "amount": float(r["amount"]),
                "deals": int(r["deals"]),
                "no_amount": int(r["no_amount"]),
            }
            for c, r in agg.iterrows()
        ]

    return _cached(run, "amount_at_risk", build)


def _new_fingerprints(run: AuditRun) -> set[str]:
    items = run.history.new_items if run.history is not None else []
    return {str(i.get("fingerprint")) for i in items}


def by_rule(run: AuditRun) -> list[dict[str, Any]]:
    """Per rule: to-dos, process-history findings, and the rate over the records it applies to
    (all findings / evaluated records: "CL01 63 of 488 lost deals", never "of 2,000")."""
    v = run.result.violations
    counts = v["rule_code"].astype(str).value_counts() if len(v) else pd.Series(dtype=int)
    p = run.result.process
    proc = p["rule_code"].astype(str).value_counts() if len(p) else pd.Series(dtype=int)
    cov = run.result.coverage
    evaluated = dict(zip(cov["rule_code"], cov["evaluated"], strict=False)) if len(cov) else {}
    rows = []
    for r in run.result.rules:
        d = r.describe()
        n = int(counts.get(r.code, 0))
        n_proc = int(proc.get(r.code, 0))
        ev = int(evaluated.get(r.code, 0))
        rows.append(
            {
                "code": r.code,
                "name": r.name,
                "severity": r.severity,
                "group": d.get("group", ""),
                "summary": human(d.get("summary", "")),
                "why": human(d.get("why", "")),
                "fix": human(d.get("fix", "")),
                "count": n,
                "process": n_proc,
                "evaluated": ev,
                "applies_to": r.applies_to,
                "rate": ((n + n_proc) / ev) if ev else None,
            }
        )
    top = max((r["count"] for r in rows), default=0)
    for r in rows:
        r["width"] = round(100.0 * r["count"] / top, 1) if top else 0.0
    rows.sort(key=lambda r: (SEVERITY_RANK.get(r["severity"], 1), -r["count"], r["code"]))
    return rows


def by_owner(run: AuditRun, limit: int | None = None) -> list[dict[str, Any]]:
    v = run.result.violations
    if not len(v):
        return []
    owners = owner_table(run)
    scores = run.metrics.hygiene_score.by_owner
    oid = v["owner_id"].astype(str).fillna(NO_OWNER)
    frame = pd.DataFrame(
        {
            "owner_id": oid,
            "deal": v["opportunity_id"].astype(str),
            "error": v["severity"].astype(str).eq("error"),
        }
    )
    agg = frame.groupby("owner_id").agg(
        findings=("deal", "size"), deals=("deal", "nunique"), errors=("error", "sum")
    )
    agg = agg.reset_index().sort_values(
        ["findings", "owner_id"], ascending=[False, True], kind="stable"
    )
    top = int(agg["findings"].max())
    if limit is not None:  # build display rows only for the owners shown
        agg = agg.head(limit)
    rows = []
    for rec in agg.to_dict(orient="records"):
        k = rec["owner_id"]
        known = k in owners.index
        rows.append(
            {
                "owner_id": k,
                "owner": oneline(owners.at[k, "name"] if known else None) or k,
                "team": (owners.at[k, "team"] if known else None) or "",
                "findings": int(rec["findings"]),
                "deals": int(rec["deals"]),
                "errors": int(rec["errors"]),
                "score": scores.get(k),
                "width": round(100.0 * rec["findings"] / top, 1) if top else 0.0,
            }
        )
    return rows


def by_team(run: AuditRun) -> list[dict[str, Any]]:
    scores = run.metrics.hygiene_score.by_team
    v = run.result.violations
    owners = owner_table(run)
    counts: dict[str, int] = {}
    if len(v):
        # object first: an all-missing team column maps to float, which a text fill would upcast
        team = v["owner_id"].astype(str).map(owners["team"]).astype(object)
        team = team.fillna(NO_TEAM).astype(str)
        counts = {str(k): int(c) for k, c in team.value_counts().items()}
    names = list(dict.fromkeys([*scores, *counts]))
    if len(names) <= 1 and not scores:
        return []
    return [
        {
            "team": t,
            "score": scores.get(t),
            "findings": counts.get(t, 0),
            "width": float(scores[t]) if is_number(scores.get(t)) else 0.0,
        }
        for t in sorted(names)
    ]


def process_view(run: AuditRun) -> dict[str, Any]:
    """Process history: findings on closed deals that are no to-dos, as rates per rule and
    owner (how deals moved; nothing left to fix on them)."""
    p = run.result.process
    out: dict[str, Any] = {"total": int(len(p)), "by_rule": [], "by_owner": []}
    pc = run.metrics.process_compliance
    out["by_rule"] = [asdict(r) for r in pc.by_rule_list]
    out["by_owner"] = [asdict(o) for o in pc.by_owner_list[:MAX_OWNERS]]
    out["window_days"] = run.result.context.audit.fix_window_days
    return out


def history_view(run: AuditRun, score: float | None) -> dict[str, Any] | None:
    """The trend block, or None on a first run / without history."""
    h = run.history
    if h is None:
        return None
    prev = h.previous_run
    prev_score = prev.score
    trend_rows = []
    for t in h.trend[-14:]:
        s = t.score
        fin = t.finished_at
        as_of = getattr(t, "as_of", None)  # the audit day; older stores only know the run time
        trend_rows.append(
            {
                "when": oneline(as_of or (fin and fin[:10]) or t.run_id),
                "score": s,
                "violations": t.violations,
                "width": max(0.0, min(100.0, float(s))) if is_number(s) else 0.0,
            }
        )

    def items(name: str) -> list[dict[str, Any]]:
        out = []
        for i in getattr(h, name)[:20]:
            out.append(
                {
                    "deal": oneline(i.get("opportunity_name") or i.get("opportunity_id")),
                    "url": i.get("url"),
                    "rule_code": oneline(i.get("rule_code")),
                    "rule_name": oneline(i.get("rule_name")),
                    "owner_id": oneline(i.get("owner_id")),
                    "message": human(i.get("message")),
                }
            )
        return out

    return {
        "previous": asdict(prev),
        "previous_when": oneline(getattr(prev, "as_of", None) or prev.finished_at)[:10],
        "delta": (score - prev_score) if is_number(score) and is_number(prev_score) else None,
        "new": h.new,
        "resolved": h.resolved,
        "persisting": h.persisting,
        "new_items": items("new_items"),
        "resolved_items": items("resolved_items"),
        "trend": trend_rows,
    }


def coverage_view(run: AuditRun) -> dict[str, Any]:
    cov = run.result.coverage
    rows = _records(cov) if len(cov) else []
    gaps = []
    fb: list[dict[str, Any]] = []
    for c in rows:
        reasons = c.get("reasons") or {}
        fallbacks = c.get("fallbacks") or {}
        if fallbacks:
            fb.append({"rule_code": c.get("rule_code"), "rule_name": c.get("rule_name"),
                       "fallbacks": [{"what": k, "count": n} for k, n in fallbacks.items()]})
        if c.get("not_evaluable"):
            gaps.append(
                {
                    "rule_code": c.get("rule_code"),
                    "rule_name": c.get("rule_name"),
                    "records": c.get("records"),
                    "applicable": c.get("applicable", c.get("records")),
                    "evaluated": c.get("evaluated"),
                    "not_evaluable": c.get("not_evaluable"),
                    "reasons": [{"reason": human(k), "count": n} for k, n in reasons.items()],
                }
            )
    return {"rules": rows, "gaps": gaps, "complete": not gaps, "fallbacks": fb}


def score_band(score: Any) -> str:
    if not is_number(score):
        return "none"
    return "good" if score >= 90 else "fair" if score >= 75 else "poor"


def listed_facts(run: AuditRun) -> dict[str, Any]:
    """run.facts() with unmapped stages (most records first) and warnings cut to
    ``report.max_listed``; ``unmapped_more`` / ``warnings_more`` count what was left out (50,000
    unmapped stages made a 16 MB report)."""
    facts = run.facts()
    limit = run.config.report.max_listed
    stages = sorted((facts.get("unmapped_stages") or {}).items(), key=lambda kv: -kv[1])
    warnings = list(facts.get("warnings") or [])
    return {**facts, "unmapped_stages": dict(stages[:limit]),
            "unmapped_more": max(len(stages) - limit, 0),
            "unmapped_records": sum(n for _, n in stages),
            "warnings": warnings[:limit], "warnings_more": max(len(warnings) - limit, 0)}


def report_context(run: AuditRun) -> dict[str, Any]:
    """Context of the manager report (HTML, Markdown and text)."""
    res = run.result
    v = res.violations
    limit = run.config.report.max_deals
    deals, n_deals = worst_deals(run, v, limit)
    facts = listed_facts(run)
    score = run.score
    metrics = run.metrics
    hygiene = metrics.hygiene_score
    as_json = metrics_dict(run)
    owners_rows = by_owner(run, MAX_OWNERS)
    return {
        "title": run.config.report.title,
        "facts": facts,
        "score": score,
        "band": score_band(score),
        "total": int(len(v)),
        "flagged_deals": n_deals,
        "open": metrics.counts.open,
        "by_rule": by_rule(run),
        "by_owner": owners_rows,
        "owners_total": int(v["owner_id"].astype(str).fillna(NO_OWNER).nunique()) if len(v) else 0,
        "by_team": by_team(run),
        "deals": deals,
        "deals_shown": len(deals),
        "deals_limit": limit,
        "coverage": coverage_view(run),
        "checks_share": hygiene.checks_evaluated_share,
        "score_basis": hygiene.basis.text,
        "notes": list(res.notes) + list(metrics.caveats),
        "process": process_view(run),
        "rejected": [r.to_dict() for r in run.snapshot.meta.rejected[:limit]],
        "suppressions": res.suppressions,
        "history": history_view(run, score),
        # shown by shape (reports/metric_view.py), as metrics.json holds them
        "metrics": metric_views(as_json, labels(run)),
        "periods": periods_line(as_json),
        "generated_on": facts.get("as_of") or date.today().isoformat(),
        **email_summary(run),
    }


def hygiene_dict(run: AuditRun) -> dict[str, Any]:
    """metrics.json's hygiene_score object (typed metrics or a plain dict, as tests build)."""

    def build() -> dict[str, Any]:
        m = run.metrics
        data = metrics_dict(run) if hasattr(m, "to_dict") else m
        return data.get("hygiene_score") or {}

    return _cached(run, "hygiene_dict", build)


def score_basis(run: AuditRun) -> dict[str, Any]:
    """What the org score rests on: opportunities, flagged ones, share of checks evaluated."""
    hs = hygiene_dict(run)
    v = run.result.violations
    return {
        "opportunities": hs.get("opportunities", len(run.snapshot.opportunities)),
        "flagged": hs.get("flagged", v["opportunity_id"].nunique() if len(v) else 0),
        "checks_share": hs.get("checks_evaluated_share"),
        "definition": hs.get("definition"),
    }


def links(run: AuditRun) -> dict[str, str]:
    """Where the reader finds the rest: URLs under ``report.link_base`` or plain file names."""
    base = (getattr(run.config.report, "link_base", None) or "").rstrip("/")
    names = {
        "explorer": "explorer.html",
        "appendix": "appendix.html",
        "assessment": "assessment.html",
        "csv": "violations.csv",
    }
    return {k: f"{base}/{n}" if base else n for k, n in names.items()} | {"base": base}


def email_summary(run: AuditRun) -> dict[str, Any]:
    """The short manager e-mail: the complete story in a bounded size at any org size."""
    v = run.result.violations
    fix = fix_now_mask(run)
    fix_rows = v[fix.to_numpy()] if len(v) else v
    top = min(EMAIL_TOP_DEALS, run.config.report.max_deals)
    fix_deals, n_fix_deals = worst_deals(run, fix_rows, top)
    rules = [r for r in by_rule(run) if r["count"]]
    teams = sorted(
        by_team(run),
        key=lambda t: (t["score"] if is_number(t["score"]) else 101.0, t["team"]),
    )
    return {
        "basis": score_basis(run),
        "risk": amount_at_risk(run),
        "fix_deals": fix_deals,
        "fix_deals_total": n_fix_deals,
        "fix_findings": int(fix.sum()) if len(v) else 0,
        "history_findings": int(len(process_findings(run)))
        + (int(len(v) - fix.sum()) if len(v) else 0),
        "rules_found": rules[:EMAIL_MAX_RULES],
        "rules_found_total": len(rules),
        "teams_email": teams[:EMAIL_MAX_TEAMS],
        "teams_total": len(teams),
        "links": links(run),
    }


# -- owner digests and team roll-ups -------------------------------------------------------
def owners_with_findings(run: AuditRun) -> list[str]:
    v = run.result.violations
    if not len(v):
        return []
    return sorted(v["owner_id"].dropna().astype(str).unique().tolist())


class OwnerRows(Mapping[str, pd.DataFrame]):
    """Violation rows by owner id: one stable sort, then each owner's rows are a slice taken
    when asked for (a frame per owner built up front cost ~0.2 ms each: 4 s for 20,000)."""

    def __init__(self, v: pd.DataFrame) -> None:
        keys = v["owner_id"].astype(str)
        known = keys.notna().to_numpy()
        keys = keys.to_numpy(dtype=object)[known]
        order = np.argsort(keys, kind="stable")  # rows keep their order within an owner
        self._rows = v.iloc[np.flatnonzero(known)[order]]
        ids, starts = np.unique(keys[order], return_index=True)
        ends = np.append(starts[1:], len(order)) if len(starts) else starts
        self._span = {k: (int(a), int(b)) for k, a, b in zip(ids.tolist(), starts, ends,
                                                              strict=True)}

    def __getitem__(self, owner_id: str) -> pd.DataFrame:
        start, end = self._span[owner_id]
        return self._rows.iloc[start:end]

    def __iter__(self) -> Iterator[str]:
        return iter(self._span)

    def __len__(self) -> int:
        return len(self._span)


def rows_by_owner(run: AuditRun) -> Mapping[str, pd.DataFrame]:
    """Violation rows split by owner id (sorted ids; rows in their order)."""
    return OwnerRows(run.result.violations)


def manager_groups(run: AuditRun) -> list[dict[str, Any]]:
    """Team roll-up groups: one per owner who manages others (their direct reports).

    When the direct reports all belong to the manager's own team, the manager's deals count
    too: the roll-up is then that team, with the same score the report shows for it.
    """
    return _cached(run, "manager_groups", lambda: _manager_groups(run))


def _manager_groups(run: AuditRun) -> list[dict[str, Any]]:
    owners = owner_table(run)
    mids = owners["manager_id"].dropna().astype(str)
    groups = []
    for mid in sorted(mids.unique()):
        members = mids.index[mids == mid].tolist()
        known = mid in owners.index
        name = oneline(owners.at[mid, "name"]) if known else mid
        teams = {owners.at[m, "team"] for m in members}
        own_team = owners.at[mid, "team"] if known else None
        if known and own_team is not None and teams == {own_team} and mid not in members:
            members = [mid, *members]
        groups.append(
            {
                "key": f"manager-{mid}",
                "label": f"{name or mid}'s team",
                "manager_id": mid,
                "email": owners.at[mid, "email"] if known else None,
                "members": members,
            }
        )
    return groups


def team_group(run: AuditRun, team: str) -> dict[str, Any]:
    owners = owner_table(run)
    members = owners.index[owners["team"].astype(str) == team].tolist()
    return {
        "key": f"team-{team}",
        "team": team,
        "label": team,
        "manager_id": None,
        "email": None,
        "members": members,
    }


def group_score(run: AuditRun, group: dict[str, Any]) -> tuple[float | None, str | None]:
    """A roll-up's score and basis from the same computation as the report's team scores:
    a team by name, or a manager's group that is exactly one team, reads metrics' team entry;
    any other group combines its members' checks (auditor.metrics.hygiene.combined), never an
    average of rounded owner scores."""
    hs = hygiene_dict(run)
    teams = hs.get("teams") or {}
    details = hs.get("owners") or {}
    members = {str(m) for m in group["members"]}
    team = group.get("team")
    if team is None:
        names = {(details.get(m) or {}).get("team") for m in members if m in details}
        if len(names) == 1:
            only = names.pop()
            same = {k for k, d in details.items() if d.get("team") == only}
            team = only if same == members & set(details) else None
    if team is not None and team in teams:
        return teams[team].get("score"), teams[team].get("basis")
    if team is not None and team in (hs.get("by_team") or {}):
        return hs["by_team"][team], None
    typed = getattr(getattr(run.metrics, "hygiene_score", None), "owners", None)
    source = typed if typed is not None else details  # combined() reads the typed owner scores
    return combined([source[m] for m in sorted(members) if m in source])


def team_context(run: AuditRun, group: dict[str, Any]) -> dict[str, Any]:
    """A manager's roll-up: each member's findings and score, and the team's worst deals."""
    v = run.result.violations
    members = [str(m) for m in group["members"]]
    mine = v[v["owner_id"].astype(str).isin(members)] if len(v) else v
    owners = owner_table(run)
    scores = run.metrics.hygiene_score.by_owner
    counts = mine["owner_id"].astype(str).value_counts() if len(mine) else pd.Series(dtype=int)
    deal_counts = (
        mine.groupby(mine["owner_id"].astype(str))["opportunity_id"].nunique()
        if len(mine)
        else pd.Series(dtype=int)
    )
    top = int(counts.max()) if len(counts) else 0
    # looked up for all members at once (a manager of a large org has thousands)
    names = owners["name"].reindex(members).tolist()
    found = counts.reindex(members, fill_value=0).astype(int).tolist()
    dealt = deal_counts.reindex(members, fill_value=0).astype(int).tolist()
    rows = [
        {
            "owner_id": m,
            "owner": oneline(name) or m,
            "findings": n,
            "deals": d,
            "score": scores.get(m),
            "width": round(100.0 * n / top, 1) if top else 0.0,
        }
        for m, name, n, d in zip(members, names, found, dealt, strict=True)
    ]
    rows.sort(key=lambda r: (-r["findings"], r["owner"]))
    deals, n_deals = worst_deals(run, mine, run.config.report.max_deals)
    score, basis = group_score(run, group)
    return {
        "title": run.config.report.title,
        "facts": listed_facts(run),
        "label": oneline(group["label"]),
        "members": rows[:ROLLUP_MAX_MEMBERS],
        "members_total": len(rows),
        "score": score,
        "score_basis": basis,
        "notes": list(run.result.notes),
        "total": int(len(mine)),
        "flagged_deals": n_deals,
        "deals": deals,
        "deals_shown": len(deals),
    }
