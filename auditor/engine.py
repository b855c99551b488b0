"""The rule engine: selects and configures rules, runs them, and builds the violations table.

Duties done here once, never in a rule: selection (code, name, code prefix, group), parameter
config merged over declared defaults (unknown keys rejected), severity overrides, coverage (what
each rule could not evaluate, and why), suppressions, and the long violations table with a stable
fingerprint per (source, rule, record).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from auditor.config import AuditConfig
from auditor.context import AuditContext
from auditor.derived import has_history, id_index, release_rule_caches, trim_memory
from auditor.errors import AuditorError, ConfigError
from auditor.paths import import_artefacts, newest_change
from auditor.plugins import rule_classes
from auditor.results import (
    FLAGGED,
    NOT_EVALUABLE,
    PASSED,
    VIOLATION_COLUMNS,
    AuditResult,
)
from auditor.rule import GROUPS, STAGE_HISTORY, Rule, is_open
from auditor.snapshot import STR, Snapshot
from auditor.suggest import did_you_mean
from auditor.suppressions import apply_suppressions, load_suppressions


def _matches(rule: type[Rule], token: str) -> bool:
    t = token.strip()
    tl = t.casefold()
    if tl == "all":
        return True
    if tl == rule.name.casefold() or tl == rule.group().casefold():
        return True
    return rule.code.upper().startswith(t.upper())


def selector_names(rules: list[type[Rule]]) -> list[str]:
    """Everything a rule selector may name: codes, names, groups and ALL."""
    return [*(r.code for r in rules), *(r.name for r in rules), *GROUPS.values(), "ALL"]


def check_selectors(
    tokens: list[str], rules: list[type[Rule]] | None, key: str, origin: str
) -> None:
    """Each selector must match some rule; the message suggests the closest name."""
    rules = rule_classes() if rules is None else rules
    for t in tokens:
        if not any(_matches(r, t) for r in rules):
            hint = did_you_mean(t, selector_names(rules))
            raise ConfigError(
                f"{origin}: key `{key}`: {t!r} matches no rule{hint} (use a code like ST04, a "
                f"prefix like ST, a name like stale-proposal, a group "
                f"({', '.join(GROUPS.values())}) or ALL)"
            )


_check_tokens = check_selectors


def select_rules(config: AuditConfig, available: list[type[Rule]] | None = None) -> list[Rule]:
    """Selected rule instances with their configured parameters and severities."""
    available = rule_classes() if available is None else available
    rc = config.rules
    _check_tokens(rc.select, available, "rules.select", config.origin)
    _check_tokens(rc.ignore, available, "rules.ignore", config.origin)
    chosen = [
        r
        for r in available
        if any(_matches(r, t) for t in rc.select) and not any(_matches(r, t) for t in rc.ignore)
    ]
    by_key: dict[str, type[Rule]] = {}
    by_names: dict[str, type[Rule]] = {}
    for r in available:
        by_key[r.code.casefold()] = r
        by_key[r.name.casefold()] = r
        by_names[r.code] = by_names[r.name] = r

    params: dict[str, dict[str, Any]] = {}
    for key, table in rc.rule_params().items():
        rule = by_key.get(key.casefold())
        if rule is None:
            raise ConfigError(
                f"{config.origin}: unknown key `rules.{key}`: no rule has that code or name"
                f"{did_you_mean(key, list(by_names))} (see `crm-audit rules`)"
            )
        if not isinstance(table, dict):
            raise ConfigError(
                f"{config.origin}: key `rules.{key}`: expected a table of parameters, got {table!r}"
            )
        for pname, value in table.items():
            where = f"{config.origin}: key `rules.{key}.{pname}`"
            if pname not in rule.params:
                allowed = ", ".join(rule.params) or "none"
                raise ConfigError(
                    f"{config.origin}: unknown key `rules.{key}.{pname}`: rule {rule.code} "
                    f"({rule.name}) has parameters: {allowed}{did_you_mean(pname, rule.params)}"
                )
            params.setdefault(rule.code, {})[pname] = rule.params[pname].coerce(value, where)

    severities: dict[str, str] = {}
    for key, sev in rc.severity.items():
        rule = by_key.get(key.casefold())
        if rule is None:
            raise ConfigError(
                f"{config.origin}: key `rules.severity.{key}`: no rule has that code or name"
                f"{did_you_mean(key, list(by_names))}"
            )
        severities[rule.code] = sev

    out = []
    for r in chosen:
        inst = r(**params.get(r.code, {}))
        if r.code in severities:
            inst.severity = severities[r.code]  # instance attribute shadows the class default
        out.append(inst)
    return out


_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def _hex16(h: np.ndarray) -> pd.Series:
    """uint64 hashes as 16 lower-case hex digits, without a Python call per value."""
    octets = np.frombuffer(h.astype(">u8").tobytes(), dtype=np.uint8).reshape(-1, 8)
    text = np.ascontiguousarray(_HEX[octets]).view("S16").ravel()
    arrow = pa.array(text, type=pa.binary()).cast(pa.string())
    return pd.Series(pd.arrays.ArrowStringArray(arrow), dtype=STR)


def fingerprints(source: str, codes: pd.Series, ids: pd.Series) -> pd.Series:
    """Stable 16-hex-digit hash of (source, rule code, record id), vectorized.

    pandas' hash functions use a fixed key, so the same triple hashes the same across runs and
    machines; that is what lets history diff runs. The (source, code) part has few distinct
    values, so it is hashed as a categorical; the record id is hashed per row.
    """
    if len(codes) == 0:
        return pd.Series([], index=codes.index, dtype=STR)
    # the categorical built from the few distinct codes hashes like one built from every
    # row's text; Arrow-backed ids hash like the same ids as Python strings (pinned by
    # tests/auditor/test_fingerprints.py): no Python string per finding
    code_ix, distinct = pd.factorize(codes)
    key = pd.Categorical.from_codes(
        code_ix, categories=[f"{source}\x1f{c}" for c in distinct]
    )
    id_values = ids if ids.dtype == STR else ids.astype(str).to_numpy(dtype=object)
    frame = pd.DataFrame({"key": key, "id": id_values}, copy=False)
    frame.index = pd.RangeIndex(len(frame))
    h = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    out = _hex16(h)
    out.index = codes.index
    return out


def _violation_table(
    opp: pd.DataFrame, hits: list[tuple[Rule, np.ndarray, pd.Series]], source: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """One long table of findings in rule order, with the opportunity fields reports need, and
    each finding's row position in ``opp``."""
    rows = np.concatenate([h[1] for h in hits]) if hits else np.zeros(0, dtype=np.int64)
    counts = [len(h[1]) for h in hits]

    def per_rule(values: list[str]) -> pd.Series:
        return pd.Series(np.repeat(np.array(values, dtype=object), counts), dtype=STR)

    codes = per_rule([h[0].code for h in hits])
    out = pd.DataFrame(
        {
            "rule_code": codes,
            "rule_name": per_rule([h[0].name for h in hits]),
            "severity": per_rule([h[0].severity for h in hits]),
        }
    )
    for col, src in (
        ("opportunity_id", "id"),
        ("opportunity_name", "name"),
        ("owner_id", "owner_id"),
        ("account_name", "account_name"),
        ("stage", "stage"),
        ("amount", "amount"),
        ("url", "url"),
    ):
        out[col] = opp[src].take(rows).reset_index(drop=True)
    messages = [h[2].astype(STR) for h in hits]
    out["message"] = (
        pd.concat(messages, ignore_index=True) if messages else pd.Series([], dtype=STR)
    )
    out["fingerprint"] = fingerprints(source, out["rule_code"], out["opportunity_id"])
    return out[VIOLATION_COLUMNS], rows


@contextmanager
def _rule_failure(rule: Rule) -> Iterator[None]:
    """A rule's own crash becomes an AuditorError naming the rule (auditor errors pass as they
    are): the run stops with a message, never a traceback from inside a rule."""
    try:
        yield
    except AuditorError:
        raise
    except Exception as exc:
        msg = f"rule {rule.code} ({rule.name}) failed on this snapshot: {exc}"
        raise AuditorError(msg) from exc


def _evaluate_all(
    rules: list[Rule],
    snap: Snapshot,
    ctx: AuditContext,
    futures: dict[int, Future[None]],
    hits: list[tuple[Rule, np.ndarray, pd.Series]],
    cov_rows: list[dict[str, Any]],
    timings: dict[str, float],
    checks: np.ndarray,
) -> None:
    """Coverage, evaluation and messages of each rule, in order (results appended in place).

    A record is *evaluated* by a rule only when the rule applies to its state
    (``Rule.applies``) and its inputs are there (no not-evaluable reason); ``checks`` gets one
    state per record and rule.
    """
    opp = snap.opportunities
    n = len(opp)
    for j, rule in enumerate(rules):
        tr = time.perf_counter()
        if id(rule) in futures:
            with _rule_failure(rule):
                futures[id(rule)].result()
        with _rule_failure(rule):
            applies = np.asarray(pd.Series(rule.applies(snap, ctx)).fillna(False), dtype=bool)
        blocked = np.zeros(n, dtype=bool)
        reason_counts: dict[str, int] = {}
        for reason, mask in _coverage_masks(rule, snap, ctx):
            m = np.ones(n, dtype=bool) if mask is True else np.asarray(mask, dtype=bool)
            new = m & ~blocked & applies
            if new.any():
                reason_counts[reason] = int(new.sum())
            blocked |= m
        blocked &= applies
        judged = applies & ~blocked
        if not judged.any():
            flagged = np.zeros(n, dtype=bool)
        else:
            with _rule_failure(rule):
                mask = rule.evaluate(snap, ctx)
            flagged = np.asarray(pd.Series(mask).fillna(False), dtype=bool) & judged
        fallback_counts = {
            what: int((np.asarray(m, dtype=bool) & judged).sum())
            for what, m in rule.fallbacks(snap, ctx).items()
        }
        col = checks[:, j]
        col[applies] = NOT_EVALUABLE
        col[judged] = PASSED
        col[flagged] = FLAGGED
        cov_rows.append(
            {
                "rule_code": rule.code,
                "rule_name": rule.name,
                "severity": rule.severity,
                "records": n,
                "applicable": int(applies.sum()),
                "evaluated": int(judged.sum()),
                "not_evaluable": int(blocked.sum()),
                "reasons": reason_counts,
                "fallbacks": {k: v for k, v in fallback_counts.items() if v},
                "flagged": int(flagged.sum()),
            }
        )
        if flagged.any():
            rows = opp.index[flagged]
            hits.append((rule, np.flatnonzero(flagged), rule.message(snap, ctx, rows)))
        timings[rule.code] = time.perf_counter() - tr


def _coverage_masks(
    rule: Rule, snap: Snapshot, ctx: AuditContext
) -> list[tuple[str, pd.Series | bool]]:
    reasons: list[tuple[str, pd.Series | bool]] = []
    meta = snap.meta
    for col in rule.requires:
        if col == STAGE_HISTORY:
            if not meta.has_stage_history:
                reasons.append(("source has no stage history", True))
            else:
                reasons.append(("record has no stage history", ~has_history(snap)))
        elif col in meta.unreadable_fields:
            reasons.append((
                f"field {meta.unreadable_fields[col]} is not readable by the integration user",
                True))
        elif col not in meta.provided_fields:
            reasons.append((f"source does not provide {col}", True))
    reasons.extend(rule.not_evaluable(snap, ctx).items())
    return reasons


def _scopes(snap: Snapshot, ctx: AuditContext) -> tuple[np.ndarray, np.ndarray]:
    """(open deals, deals closed within the fix window): where findings are to-dos."""
    opp = snap.opportunities
    open_ = is_open(snap).to_numpy(dtype=bool)
    day = opp["close_date"].fillna(ctx.calendar_day(opp["updated_at"]))
    age = ctx.days_since(day)
    # a closed deal of unknown age may be recent: it stays a to-do rather than vanish
    recent = (age <= ctx.audit.fix_window_days).fillna(True).to_numpy(dtype=bool)
    return open_, ~open_ & recent


def _split(
    found: pd.DataFrame, pos: np.ndarray, rules: list[Rule], todo: np.ndarray,
    recent: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Findings (at opportunity rows ``pos``) → (to-dos, process history)."""
    if not len(found):
        return found, found.copy()
    closeout = found["rule_code"].isin([r.code for r in rules if r.closeout]).to_numpy()
    is_todo = todo[pos] | (closeout & recent[pos])
    return (
        found[is_todo].reset_index(drop=True),
        found[~is_todo].reset_index(drop=True),
    )


def _notes(snap: Snapshot, ctx: AuditContext) -> list[str]:
    """Facts about the data every report states: imports, stale data."""
    notes = [b.note() for b in import_artefacts(snap, ctx.audit.import_min_records)[1]]
    newest = newest_change(snap)
    if newest is not None:
        day = newest.tz_convert(ctx.timezone).tz_localize(None).normalize()
        gap = int((ctx.as_of - day).days)
        if gap > ctx.audit.stale_data_days:
            notes.append(
                f"the newest change in the data is on {day.date().isoformat()}, {gap:,} days "
                f"before the audit day {ctx.as_of.date().isoformat()}: ages and overdue dates "
                "are measured to the audit day (set audit.as_of to audit the data as of then)"
            )
    return notes


def run_audit(
    snap: Snapshot,
    config: AuditConfig,
    as_of: date | str | None = None,
    rules: list[Rule] | None = None,
) -> AuditResult:
    """Run the selected rules over a validated Snapshot."""
    t0 = time.perf_counter()
    ctx = AuditContext.create(
        as_of if as_of is not None else config.audit.as_of,
        config.audit.timezone,
        config.process,
        config.audit,
    )
    rules = select_rules(config) if rules is None else rules
    opp = snap.opportunities
    # (rule, row positions, messages): the opportunity columns are gathered once at the end,
    # one take per column for all findings rather than a full-frame copy per rule
    hits: list[tuple[Rule, np.ndarray, pd.Series]] = []
    cov_rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    # rules with a prepare() get it run on a second thread, in rule order, while the main
    # thread evaluates the earlier rules; each rule waits for its own prepare
    prepared = [r for r in rules if type(r).prepare is not Rule.prepare]
    pool = ThreadPoolExecutor(max_workers=1) if prepared else None
    futures = {id(r): pool.submit(r.prepare, snap, ctx) for r in prepared} if pool else {}
    checks = np.zeros((len(opp), len(rules)), dtype=np.int8)
    try:
        _evaluate_all(rules, snap, ctx, futures, hits, cov_rows, timings, checks)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    violations, rows = _violation_table(opp, hits, snap.meta.source)
    del hits
    trim_memory()  # the rules' temporaries, before the metrics allocate theirs

    rule_keys = {}
    for r in rule_classes():
        rule_keys[r.code.casefold()] = r.code
        rule_keys[r.name.casefold()] = r.code
    kept, suppressed, status = apply_suppressions(
        violations, load_suppressions(config), ctx.as_of, rule_keys
    )
    if len(suppressed):  # an accepted exception counts as a passed check
        col = {r.code: j for j, r in enumerate(rules)}
        pos = id_index(snap).get_indexer(suppressed["opportunity_id"].astype(object))
        j = suppressed["rule_code"].astype(str).map(col).to_numpy()
        ok = pos >= 0
        checks[pos[ok], j[ok].astype(np.int64)] = PASSED
    todo_scope, closeout_scope = _scopes(snap, ctx)
    kept_rows = rows[kept.index.to_numpy()]  # kept keeps the violation table's index
    todo, process = _split(
        kept.reset_index(drop=True), kept_rows, rules, todo_scope, closeout_scope
    )
    coverage = pd.DataFrame(cov_rows)
    if len(coverage):
        sup_counts = suppressed["rule_code"].value_counts()
        coverage["suppressed"] = coverage["rule_code"].map(sup_counts).fillna(0).astype(int)
        coverage["flagged"] = coverage["flagged"] - coverage["suppressed"]
        proc_counts = process["rule_code"].value_counts()
        coverage["process"] = coverage["rule_code"].map(proc_counts).fillna(0).astype(int)
        coverage["to_do"] = coverage["flagged"] - coverage["process"]
    notes = _notes(snap, ctx)
    release_rule_caches(snap)
    return AuditResult(
        process=process,
        checks=checks,
        todo_scope=todo_scope,
        closeout_scope=closeout_scope,
        notes=notes,
        violations=todo,
        suppressed=suppressed.reset_index(drop=True),
        coverage=coverage,
        suppressions=status,
        rules=rules,
        context=ctx,
        duration_s=time.perf_counter() - t0,
        timings=timings,
    )
