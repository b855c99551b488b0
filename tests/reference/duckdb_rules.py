"""A second, independent implementation of every rule, in DuckDB SQL, written from docs/rules.md.

It imports nothing from ``rules/`` (nor their defaults): the stage order, the judged stages and
every threshold come from the documentation and the config passed in. The differential tests
(tests/rules/test_differential.py) run it next to the engine and fail on any difference;
scripts/benchmark.py can time it (``reference_findings``).

Scope: audits in UTC (calendar days = UTC dates). Returns the flagged (rule code, record id)
pairs — every finding, to-do or process history — plus the to-do split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

# docs/rules.md and the stage model: the ten common stages in order
STAGES = ["lead", "contact", "qualification", "discovery", "solution", "proposal",
          "negotiation", "closed_won", "closed_lost", "handoff"]
OPEN = STAGES[:7]
PAST_QUAL = ["discovery", "solution", "proposal", "negotiation", "closed_won", "handoff"]
# "needs:" of each rule in docs/rules.md
NEEDS = {
    "QL01": ["stage", "stage_history"], "QL02": ["stage"], "ST01": ["stage", "stage_history"],
    "ST02": ["stage", "stage_history"], "ST03": ["stage", "stage_entered_at"],
    "ST04": ["stage", "stage_entered_at", "last_activity_at"], "FU01": ["stage"],
    "FU02": ["next_step_due"], "FU03": ["last_activity_at"], "CD01": ["close_date"],
    "CD02": ["close_date_changes"], "CD03": ["stage"], "CL01": ["stage", "loss_reason"],
    "CL02": ["amount"], "CL03": ["close_date", "handoff_at"], "DQ01": ["stage", "amount"],
    "DQ02": ["owner_id"], "DQ03": ["source_stage"], "DQ04": ["name"],
}
CLOSEOUT = {"CL01", "CL02", "CL03"}
MARKER = r"(^|[^\pL\pN])copy([^\pL\pN]+of)?([^\pL\pN]|$)"
COUNTER = r"\(\s*\d{1,2}\s*\)"


@dataclass
class Settings:
    """What the config says (passed in; nothing read from the rules' defaults)."""

    as_of: str
    stage_limits: dict[str, int]
    exit_criteria: dict[str, list[str]]
    params: dict[str, dict[str, Any]]
    stage_probability: dict[str, float] = field(default_factory=dict)
    fix_window_days: int = 90
    strict_history: bool = False
    import_min_records: int = 5


def _q(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(v)


def _in(values: list[str]) -> str:
    return "(" + ", ".join(_q(v) for v in values) + ")"


def _norm(expr: str) -> str:
    """The documented name normalisation, in SQL."""
    s = f"lower({expr})"
    s = f"regexp_replace({s}, {_q(MARKER)}, ' ', 'g')"
    s = f"regexp_replace({s}, {_q(COUNTER)}, ' ', 'g')"
    s = f"regexp_replace({s}, '[^\\pL\\pN]+', '', 'g')"
    return f"nullif({s}, '')"


def _frames(snap: Any) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    opp = snap.opportunities.copy()
    for c in opp.columns:
        if isinstance(opp[c].dtype, pd.CategoricalDtype):
            opp[c] = opp[c].astype(object)
    opp["stage"] = opp["stage"].astype(object).where(opp["stage"].notna(), None)
    opp["rn"] = range(len(opp))
    hist = snap.stage_history.copy()
    hist["stage"] = hist["stage"].astype(object).where(hist["stage"].notna(), None)
    hist["rn"] = range(len(hist))
    owners = snap.owners.copy()
    return opp, hist, owners


def reference_findings(snap: Any, s: Settings, threads: int | None = None) -> dict[str, Any]:
    """{"all": {(code, id)}, "todo": {(code, id)}} from the documented semantics.

    ``threads``: DuckDB's worker threads (default: one per core); the benchmark pins it.
    """
    opp, hist, owners = _frames(snap)
    con = duckdb.connect(config={"threads": threads} if threads else {})
    con.execute("SET TimeZone = 'UTC'")
    con.register("opp_raw", opp)
    con.register("hist_raw", hist)
    con.register("owners", owners)
    order = "CASE stage " + " ".join(f"WHEN {_q(st)} THEN {i}" for i, st in enumerate(STAGES))
    order += " END"
    as_of = f"DATE {_q(s.as_of)}"
    con.execute(f"""
        CREATE TABLE o AS SELECT *, {order} AS pos,
          NOT coalesce(is_closed, stage IN ('closed_won','closed_lost','handoff'), FALSE) AS op,
          coalesce(is_won, stage IN ('closed_won','handoff'), FALSE) AS won,
          coalesce(is_closed, stage IN ('closed_won','closed_lost','handoff'), FALSE)
            AND NOT coalesce(is_won, stage IN ('closed_won','handoff'), FALSE) AS lost
        FROM opp_raw""")
    con.execute(f"""
        CREATE TABLE h AS SELECT hist_raw.opportunity_id AS id, hist_raw.stage,
          hist_raw.source_stage, hist_raw.entered_at, hist_raw.rn,
          {order.replace("CASE stage", "CASE hist_raw.stage")} AS pos
        FROM hist_raw JOIN o ON o.id = hist_raw.opportunity_id""")
    # mapped history in time order (ties keep the source order), consecutive moves
    con.execute("""
        CREATE TABLE hm AS SELECT *, row_number() OVER (PARTITION BY id
            ORDER BY entered_at NULLS LAST, rn) AS k FROM h WHERE pos IS NOT NULL""")
    con.execute("""
        CREATE TABLE moves AS SELECT * FROM (SELECT id, lag(pos) OVER (PARTITION BY id ORDER BY k)
            AS f, pos AS t FROM hm) WHERE f IS NOT NULL AND f <> t""")
    con.execute("""
        CREATE TABLE visited AS SELECT DISTINCT id, pos FROM hm
        UNION SELECT id, pos FROM o WHERE pos IS NOT NULL""")
    con.execute("""
        CREATE TABLE um AS SELECT id FROM h WHERE stage IS NULL AND source_stage IS NOT NULL
        UNION SELECT id FROM o WHERE stage IS NULL AND source_stage IS NOT NULL""")
    reached = set(snap.meta.reached_stages)
    reached |= set(con.execute("SELECT DISTINCT stage FROM hm UNION "
                               "SELECT stage FROM o WHERE stage IS NOT NULL").df()["stage"])
    provided = set(snap.meta.provided_fields)
    has_hist = bool(snap.meta.has_stage_history)

    def ids(sql: str) -> set[str]:
        return set(con.execute(sql).df().iloc[:, 0].astype(str))

    def days(col: str) -> str:
        return f"date_diff('day', CAST({col} AS DATE), {as_of})"

    def blocked(code: str) -> bool:
        for need in NEEDS[code]:
            if need == "stage_history":
                if not has_hist:
                    return True
            elif need not in provided:
                return True
        return False

    p = {k: dict(v) for k, v in s.params.items()}
    out: dict[str, set[str]] = {}
    with_hist = "id IN (SELECT id FROM hm)"
    unmapped_path = "(id IN (SELECT id FROM um))"
    past = [STAGES.index(x) for x in PAST_QUAL]
    # QL01
    if "qualification" in reached:
        late = "" if s.strict_history else (
            f" AND id NOT IN (SELECT id FROM hm WHERE k = 1 AND pos IN {tuple(past)})")
        out["QL01"] = ids(f"""SELECT id FROM o WHERE {with_hist} AND NOT {unmapped_path}{late}
            AND id IN (SELECT id FROM visited WHERE pos IN {tuple(past)})
            AND id NOT IN (SELECT id FROM visited WHERE pos = 2)""")
    # QL02
    crit = {st: f for st, f in s.exit_criteria.items() if f}
    fields = {f for fs in crit.values() for f in fs}
    schema = set(snap.opportunities.columns)
    if crit and all(f in schema for f in fields) and not any(
            f in _SCHEMA and f not in provided for f in fields):
        conds = []
        for st, fs in crit.items():
            empty = " OR ".join(f"(trim(CAST({f} AS VARCHAR)) = '' OR {f} IS NULL)" for f in fs)
            conds.append(f"(pos > {STAGES.index(st)} AND ({empty}))")
        out["QL02"] = ids(f"SELECT id FROM o WHERE coalesce(stage <> 'closed_lost', FALSE) "
                          f"AND ({' OR '.join(conds)})")
    # ST01
    judged = [STAGES.index(x) for x in OPEN if x in reached and x not in ("lead", "qualification")]
    if reached and judged:
        targets = tuple(STAGES.index(x) for x in [*OPEN, "closed_won"])
        out["ST01"] = ids(f"""SELECT DISTINCT m.id FROM moves m
            JOIN (SELECT unnest({judged}) AS s) j ON j.s > m.f AND j.s < m.t
            JOIN o ON o.id = m.id
            WHERE m.t > m.f + 1 AND m.t IN {targets} AND m.id NOT IN (SELECT id FROM um)
              AND NOT EXISTS (SELECT 1 FROM visited v WHERE v.id = m.id AND v.pos = j.s)""")
    # ST02
    out["ST02"] = ids("""SELECT DISTINCT m.id FROM moves m JOIN o ON o.id = m.id
        WHERE o.op AND m.t < m.f AND m.f <= 6 AND m.t <= 6""")
    # ST03
    limits = " ".join(f"WHEN {_q(k)} THEN {v}" for k, v in s.stage_limits.items())
    out["ST03"] = ids(f"""SELECT id FROM o WHERE op AND stage IN {_in(OPEN)}
        AND stage_entered_at IS NOT NULL
        AND {days('stage_entered_at')} > CASE stage {limits} END""")
    # ST04
    any_activity = con.execute("SELECT count(last_activity_at) FROM o").fetchone()[0] > 0
    if any_activity:
        st4 = p.get("ST04", {})
        out["ST04"] = ids(f"""SELECT id FROM o WHERE op AND stage IN ('proposal','negotiation')
            AND stage_entered_at IS NOT NULL AND {days('stage_entered_at')} > {st4['max_days']}
            AND {days('coalesce(last_activity_at, created_at)')} > {st4['idle_days']}""")
    # FU01
    if {"next_step", "next_step_due"} & provided:
        # an open deal (the flags win) whose stage maps to an outcome is not judged
        out["FU01"] = ids("""SELECT id FROM o WHERE op AND pos >= 2
            AND stage NOT IN ('closed_won', 'closed_lost', 'handoff')
            AND next_step IS NULL AND next_step_due IS NULL""")
    # FU02
    out["FU02"] = ids(f"SELECT id FROM o WHERE op AND next_step_due < {as_of}")
    # FU03
    if any_activity:
        out["FU03"] = ids(f"""SELECT id FROM o WHERE op
            AND {days('coalesce(last_activity_at, created_at)')} > {p['FU03']['max_days']}""")
    # CD01, CD02
    out["CD01"] = ids(f"SELECT id FROM o WHERE op AND close_date < {as_of}")
    out["CD02"] = ids(f"SELECT id FROM o WHERE op AND close_date_changes >= "
                      f"{p['CD02']['min_changes']}")
    # CD03
    if {"forecast_category", "probability"} & provided:
        c3 = p["CD03"]
        exp = snap.meta.stage_expectations
        ep = " ".join(f"WHEN {_q(k)} THEN {float(v['probability'])}" for k, v in exp.items()
                      if v.get("probability") is not None)
        ec = " ".join(f"WHEN {_q(k)} THEN {_q(v['forecast_category'])}" for k, v in exp.items()
                      if v.get("forecast_category") is not None)
        cp = " ".join(f"WHEN {_q(k)} THEN {float(v)}" for k, v in s.stage_probability.items())
        exp_p = (f"coalesce(CASE source_stage {ep} END, " if ep else "coalesce(NULL, ") + (
            f"CASE stage {cp} END)" if cp else "NULL)")
        exp_c = f"CASE source_stage {ec} END" if ec else "NULL"
        cats = _in(c3["categories"]) if c3["categories"] else "(NULL)"
        out["CD03"] = ids(f"""SELECT id FROM o WHERE op AND pos < {STAGES.index(c3['before_stage'])}
            AND ((forecast_category IN {cats} AND NOT coalesce({exp_c} IN {cats}, FALSE))
              OR (probability >= {c3['min_probability']}
                  AND coalesce(probability > {exp_p}, TRUE)))""")
    # CL01-CL03
    out["CL01"] = ids("SELECT id FROM o WHERE lost AND loss_reason IS NULL")
    out["CL02"] = ids("SELECT id FROM o WHERE won AND (amount IS NULL OR amount <= 0)")
    out["CL03"] = ids(f"""SELECT id FROM o WHERE won AND coalesce(stage <> 'handoff', TRUE)
        AND handoff_at IS NULL AND {days('close_date')} > {p['CL03']['max_days']}""")
    # DQ01-DQ03
    out["DQ01"] = ids(f"""SELECT id FROM o WHERE op
        AND pos >= {STAGES.index(p['DQ01']['from_stage'])} AND (amount IS NULL OR amount <= 0)""")
    known_owners = int(owners["id"].notna().sum())
    unknown = ("OR owner_id NOT IN (SELECT id FROM owners WHERE id IS NOT NULL)"
               if known_owners else "")
    out["DQ02"] = ids(f"""SELECT id FROM o WHERE op AND (owner_id IS NULL {unknown}
        OR owner_id IN (SELECT id FROM owners WHERE active = FALSE))""")
    out["DQ03"] = ids("SELECT id FROM o WHERE stage IS NULL AND source_stage IS NOT NULL")
    # DQ04
    con.execute(f"""CREATE TABLE d AS SELECT id, name, amount, close_date, created_at,
        {_norm('name')} AS nm,
        CASE WHEN account_id IS NOT NULL THEN 'id:' || account_id
             ELSE 'name:' || {_norm('account_name')} END AS acct,
        regexp_matches(lower(name), {_q(MARKER)}) OR regexp_matches(lower(name), {_q(COUNTER)})
          AS marker
        FROM o WHERE op""")
    out["DQ04"] = ids("""SELECT a.id FROM d a JOIN d b ON a.acct = b.acct AND a.id <> b.id
        WHERE a.nm IS NOT NULL AND b.nm IS NOT NULL AND a.acct IS NOT NULL
          AND (a.nm = b.nm OR (levenshtein(a.nm, b.nm) = 1
               AND greatest(length(a.nm), length(b.nm)) >= 8
               AND regexp_replace(a.nm, '[^0-9]', '', 'g')
                   = regexp_replace(b.nm, '[^0-9]', '', 'g')))
          AND (a.marker OR b.marker OR a.amount = b.amount
               OR (strftime(a.close_date, '%Y-%m') = strftime(b.close_date, '%Y-%m')
                   AND abs(epoch(a.created_at) - epoch(b.created_at)) <= 7 * 86400))""")

    flagged = {(c, i) for c, found in out.items() if not blocked(c) for i in found}
    # to-do: open deals; close-out rules also on deals closed within the fix window
    recent = ids(f"""SELECT id FROM o WHERE NOT op AND coalesce({
        days('coalesce(close_date, CAST(updated_at AS DATE))')} <= {s.fix_window_days}, TRUE)""")
    open_ids = ids("SELECT id FROM o WHERE op")
    todo = {(c, i) for c, i in flagged if i in open_ids or (c in CLOSEOUT and i in recent)}
    con.close()
    return {"all": flagged, "todo": todo}


# Snapshot columns (a field of the schema the source does not provide blocks QL02)
_SCHEMA = {
    "id", "source", "url", "name", "account_id", "account_name", "owner_id", "pipeline", "stage",
    "source_stage", "is_closed", "is_won", "amount", "currency", "probability",
    "forecast_category", "close_date", "created_at", "updated_at", "stage_entered_at",
    "last_activity_at", "next_step", "next_step_due", "loss_reason", "lead_source",
    "close_date_changes", "handoff_at",
}
