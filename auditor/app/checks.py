"""The checks behind ``crm-audit check-config``: one function per check.

A check takes the loaded config and a :class:`CheckEnv` and returns a :class:`Check` (a title,
a status and detail lines). ``OFFLINE`` checks never touch the network (they may read local
files); ``ONLINE`` checks contact the source and run unless ``--offline`` is given. Register a
new check with the ``@offline`` or ``@online`` decorator: it runs in the order of definition.
A check that finds a problem returns ``status="error"`` (check-config exits 2) or
``"warning"`` (reported, exit 0); it raises only for a bug, never for bad input.

File sources (csv, salesforce_export, hubspot_export): the online step reads their data the way
a run does (encoding detection, date order, mapped columns, stage values, parse rates) and turns
what would go wrong at run time into problems that name the fix (:func:`check_file_source`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from auditor.config import AuditConfig
from auditor.errors import AuditorError

if TYPE_CHECKING:
    from auditor.snapshot import Snapshot
    from connectors.base import Connector

Status = Literal["ok", "warning", "error", "skipped"]


@dataclass
class Check:
    """Outcome of one check: ``title`` is one line; ``details`` are indented under it."""

    title: str
    status: Status = "ok"
    details: list[str] = dc_field(default_factory=list)
    #: exit status an error implies (3: the source could not be read)
    exit_code: int = 2


@dataclass
class CheckEnv:
    """What checks may read besides the config: environment variables and the clock."""

    env: Mapping[str, str] = dc_field(default_factory=lambda: dict(os.environ))
    now: datetime = dc_field(default_factory=lambda: datetime.now(UTC))


CheckFn = Callable[[AuditConfig, CheckEnv], Check]
OFFLINE: list[CheckFn] = []
ONLINE: list[CheckFn] = []


def offline(fn: CheckFn) -> CheckFn:
    OFFLINE.append(fn)
    return fn


def online(fn: CheckFn) -> CheckFn:
    ONLINE.append(fn)
    return fn


def run_checks(config: AuditConfig, *, network: bool, env: CheckEnv | None = None) -> list[Check]:
    """Every offline check, then (with ``network``) every online one; a check that raises an
    AuditorError becomes an error result with its message."""
    env = env or CheckEnv()
    out = []
    seen: set[str] = set()
    for fn in [*OFFLINE, *(ONLINE if network else [])]:
        try:
            out.append(fn(config, env))
        except AuditorError as exc:
            msg = str(exc)
            if msg in seen:  # e.g. bad source options stop several checks: say it once
                out.append(Check(_title(fn), "skipped", ["not checked: see the error above"]))
            else:
                seen.add(msg)
                out.append(Check(_title(fn), "error", [msg], exc.exit_code))
    return out


def _title(fn: CheckFn) -> str:
    return (fn.__doc__ or fn.__name__).strip().splitlines()[0].rstrip(".")


# -- config and rules (cli) ------------------------------------------------------------------


@offline
def check_rule_selection(config: AuditConfig, env: CheckEnv) -> Check:
    """Rule selection and parameters."""
    from auditor.engine import select_rules
    from auditor.suppressions import load_suppressions

    selected = select_rules(config)
    load_suppressions(config)
    codes = ", ".join(r.code for r in selected)
    return Check(f"{len(selected)} rules selected", details=[codes] if codes else [])


@offline
def check_source_options(config: AuditConfig, env: CheckEnv) -> Check:
    """Source options."""
    from connectors.registry import build_connector

    connector = build_connector(config, env=env.env)
    return Check(f"source {connector.source_name!r} (type {connector.type_name}): options valid")


@offline
def check_rules_evaluable(config: AuditConfig, env: CheckEnv) -> Check:
    """Rules evaluable on this source."""
    from auditor.app.source_shape import expected_shape, rules_that_cannot_run
    from auditor.engine import select_rules
    from connectors.registry import build_connector

    connector = build_connector(config, env=env.env)
    shape = expected_shape(connector)
    selected = select_rules(config)
    if shape is None:
        return Check(
            f"rules evaluable: cannot tell before reading a {connector.type_name} source "
            "(run check-config without --offline)",
            "ok",
        )
    blocked = rules_that_cannot_run(selected, shape, config)
    if not blocked:
        return Check(f"all {len(selected)} selected rules can run on this source")
    return Check(
        f"{len(blocked)} of {len(selected)} selected rules cannot run on this source",
        "warning",
        [f"{code} {name}: {reason}" for code, name, reason in blocked],
    )


@offline
def check_field_names(config: AuditConfig, env: CheckEnv) -> Check:
    """Fields named in the config exist in the source."""
    from auditor.app.source_shape import expected_shape
    from auditor.suggest import did_you_mean
    from connectors.registry import build_connector

    shape = expected_shape(build_connector(config, env=env.env))
    if shape is None:
        return Check("field names: cannot tell before reading the source")
    columns = shape.provided_fields | shape.extra_columns
    named = [
        (f"process.exit_criteria.{stage}", f)
        for stage, fields in config.process.exit_criteria.items()
        for f in fields
    ]
    if config.metrics.segment_field:
        named.append(("metrics.segment_field", config.metrics.segment_field))
    missing = [
        f"{config.origin}: key `{key}`: field {name!r} is not in this source's data"
        f"{did_you_mean(name, columns)}"
        for key, name in named
        if name not in columns
    ]
    if missing:
        return Check(f"{len(missing)} field name(s) not in the source", "warning", missing)
    return Check(f"field names: all {len(named)} found in the source")


# -- secrets and schedule (cli) ---------------------------------------------------------------


def secret_keys(config: AuditConfig) -> list[tuple[str, str]]:
    """(config key, environment variable) for every ``*_env`` key that names a variable,
    including the source options' defaults (e.g. HubSpot's access_token_env)."""
    from connectors.registry import build_connector

    found: list[tuple[str, str]] = []

    def walk(value: object, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                key = f"{path}.{k}" if path else str(k)
                if str(k).endswith("_env") and isinstance(v, str) and v:
                    found.append((key, v))
                else:
                    walk(v, key)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")

    data = config.model_dump(exclude={"source"})
    walk(data, "")
    connector = build_connector(config, env={})
    walk(connector.options.model_dump(), "source")
    return found


@offline
def check_secrets(config: AuditConfig, env: CheckEnv) -> Check:
    """Secrets present in the environment."""
    keys = secret_keys(config)
    missing = [(k, var) for k, var in keys if not env.env.get(var)]
    if missing:
        return Check(
            f"{len(missing)} secret environment variable(s) not set",
            "error",
            [f"`{k}` names {var}, which is not set or empty: export {var}=..." for k, var in
             missing],
        )
    if not keys:
        return Check("secrets: none needed")
    # names only: the values are secrets
    return Check(f"secrets: {', '.join(var for _, var in keys)} set")


@offline
def check_schedule(config: AuditConfig, env: CheckEnv) -> Check:
    """Schedule: cron expressions valid and firing."""
    from auditor.app.scheduler import cron_trigger

    jobs = config.schedule.jobs
    if not jobs:
        return Check("schedule: no jobs configured")
    problems: list[str] = []
    lines: list[str] = []
    for i, job in enumerate(jobs):
        try:
            trigger = cron_trigger(job, i, config.origin)
        except AuditorError as exc:
            problems.append(str(exc))
            continue
        nxt = trigger.get_next_fire_time(None, env.now)
        if nxt is None:
            problems.append(
                f"{config.origin}: key `schedule.jobs[{i}].cron` ({job.name!r}): "
                f"{job.cron!r} never fires (no such day in the calendar)"
            )
        else:
            lines.append(f"{job.name}: next run {nxt.isoformat()}")
    if problems:
        return Check(f"schedule: {len(problems)} of {len(jobs)} job(s) invalid", "error",
                     problems + lines)
    return Check(f"schedule: {len(jobs)} job(s) valid", details=lines)


# -- file sources: reading the data (exports) -------------------------------------------------


# -- API sources: describe / field access (streams) -------------------------------------------


def check_readable_fields(facts: Mapping[str, Any], config: AuditConfig) -> list[str]:
    """Live sources: each source field the integration user cannot read (field-level
    security), and the selected rules it makes not evaluable — the same rules a run's coverage
    names, found by asking each rule about an empty snapshot with that field hidden."""
    unreadable: dict[str, str] = dict(facts.get("unreadable_fields") or {})
    if not unreadable:
        return []
    import pandas as pd

    from auditor.context import AuditContext
    from auditor.engine import select_rules
    from auditor.snapshot import (
        Snapshot,
        SnapshotMeta,
        make_opportunities,
        make_owners,
        make_stage_history,
    )

    snap = Snapshot(make_opportunities(pd.DataFrame({"id": []})), make_stage_history(),
                    make_owners(), SnapshotMeta(
        source="check", source_type="check", unreadable_fields=unreadable)).validate()
    ctx = AuditContext.create(config.audit.as_of, config.audit.timezone, config.process)
    rules = select_rules(config)
    lines = []
    for column, field in sorted(unreadable.items(), key=lambda kv: kv[1]):
        reason = f"field {field} is not readable by the integration user"
        blocked = sorted(r.code for r in rules
                         if column in r.requires or reason in r.not_evaluable(snap, ctx))
        lines.append(f"{reason}: rules not evaluable: {', '.join(blocked) or 'none'} "
                     f"(grant Read on Opportunity.{field} to audit them)")
    return lines



# -- file sources: their data is read (exports, #15) ----------------------------------------

#: source types whose data check-config reads from files
FILE_SOURCES = ("csv", "salesforce_export", "hubspot_export")
#: share of a date or amount column that may be unreadable before check-config calls it a
#: problem (a few bad cells are data to fix in the CRM; more means a wrong setting)
MAX_UNREADABLE_SHARE = 0.05


@dataclass
class DataReport:
    """What reading a file source found: lines to print, and problems (each names its fix)."""

    lines: list[str] = dc_field(default_factory=list)
    problems: list[str] = dc_field(default_factory=list)


def check_file_source(connector: Connector) -> DataReport | None:
    """Read a file source's data and run every data check; None for other source types."""
    if connector.type_name not in FILE_SOURCES:
        return None
    report = DataReport()
    snap = check_readable(connector, report)
    if snap is None:
        return report
    check_encodings(snap, report)
    check_mapped_fields(snap, report)
    check_stage_values(snap, report)
    check_parse_rates(snap, report)
    check_rejected_rows(snap, report)
    report.lines += [f"  warning: {w}" for w in snap.meta.warnings]
    return report


def check_readable(connector: Connector, report: DataReport) -> Snapshot | None:
    """The files exist, decode, have the required columns and a decidable date order; the stage
    map is valid. Each of these stops a run, so each is a problem with its own message."""
    try:
        snap = connector.pull()
    except AuditorError as exc:
        report.problems.append(str(exc))
        return None
    m = snap.meta
    report.lines.append(
        f"  read {m.loaded_rows} opportunities, {len(snap.stage_history)} stage-history rows, "
        f"{len(snap.owners)} owners")
    return snap


def check_encodings(snap: Snapshot, report: DataReport) -> None:
    """Print each file's encoding and how sure the detection is (never a problem by itself)."""
    for name, enc in sorted((snap.meta.extra.get("encodings") or {}).items()):
        how = (f"detected, confidence {enc['confidence']:.0%}" if enc.get("detected")
               else "as set")
        mixed = (f"; {enc['mixed_with']} on rows {enc['mixed_rows']}"
                 if enc.get("mixed_rows") else "")
        report.lines.append(f"  {name}: {enc['encoding']} ({how}){mixed}")


def check_mapped_fields(snap: Snapshot, report: DataReport) -> None:
    """Configured fields that are not columns of the file (the messages carry "did you mean")."""
    for missing in snap.meta.extra.get("missing_fields") or []:
        report.problems.append(missing["message"])


def check_stage_values(snap: Snapshot, report: DataReport) -> None:
    """Stage values in the data that the stage map does not know."""
    import difflib

    from auditor.stages import STAGES

    for stage, n in sorted(snap.meta.unmapped_stages.items()):
        used = f"{n} records" if n else "listed by the export's stage metadata"
        key = stage.casefold().replace(" ", "_")
        near = difflib.get_close_matches(key, STAGES, n=1, cutoff=0.5)
        report.problems.append(
            f"stage {stage!r} ({used}) is not in the stage map; add it to source.stage_map, "
            f"e.g. {_toml_key(stage)} = \"{near[0] if near else 'qualification'}\" (common "
            f"stages: {', '.join(STAGES)})")


def check_parse_rates(snap: Snapshot, report: DataReport) -> None:
    """Date and amount columns: the share of values that could be read."""
    for where, u in sorted((snap.meta.extra.get("unreadable") or {}).items()):
        of = max(int(u["of"]), 1)
        share = u["bad"] / of
        line = (f"{where}: {u['bad']} of {u['of']} values ({share:.0%}) cannot be read as "
                f"{u['kind']} (e.g. {u['example']!r})")
        if share > MAX_UNREADABLE_SHARE:
            report.problems.append(line + "; " + _parse_fix(u))
        else:
            report.lines.append("  " + line)


def check_rejected_rows(snap: Snapshot, report: DataReport) -> None:
    rejected = snap.meta.rejected
    if rejected:
        report.lines.append(f"  {len(rejected)} rows would be rejected, e.g. "
                            f"{rejected[0].where}: {rejected[0].reason}")


def _parse_fix(u: dict[str, Any]) -> str:
    kind = str(u["kind"])
    if "date" in kind or kind == "ts":
        return ("set source.date_order (\"day_first\" / \"month_first\") for slash dates, or "
                "source.date_format for another form")
    if kind in ("amount", "float"):
        return "set source.decimal / source.thousands to the file's number format"
    return "check the column mapped to it"


def _toml_key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum()
    return key if bare else '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- online: connect to the source (cli) ------------------------------------------------------


@online
def check_source_reachable(config: AuditConfig, env: CheckEnv) -> Check:
    """Source reachable."""
    from connectors.registry import build_connector

    connector = build_connector(config, env=env.env)
    data = check_file_source(connector)  # file sources: the data itself is read
    if data is not None:
        if data.problems:
            return Check(f"source {connector.source_name}: {len(data.problems)} problem(s) in "
                         "the data, each with its fix", "error",
                         [line.strip() for line in data.lines]
                         + [f"problem: {p}" for p in data.problems])
        return Check(f"source {connector.source_name}: files read, no problem found", "ok",
                     [line.strip() for line in data.lines])
    facts = connector.check()
    hidden = check_readable_fields(facts, config)  # field-level security (API sources)
    return Check(
        f"source {connector.source_name}: reachable",
        "warning" if hidden else "ok",
        [f"{k}: {_fact(v)}" for k, v in facts.items()] + hidden,
    )


def _fact(value: object) -> str:
    """A fact as text for people: mappings as "key (n), ...", lists comma-separated."""
    if isinstance(value, Mapping):
        if not value:
            return "none"
        return ", ".join(f"{k} ({v})" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(map(str, value)) or "none"
    return str(value)
