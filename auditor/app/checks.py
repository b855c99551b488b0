"""check-config: each check is one function, so the offline, file-data and live checks stay
apart.

File-data checks (``type`` = csv, salesforce_export, hubspot_export) read the data the way a
run does — every file's header and rows, with encoding detection and date-order decisions — and
turn what would go wrong at run time into problems that name the fix. ``crm-audit
check-config`` exits 2 when any is found.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from auditor.config import AuditConfig
from auditor.errors import AuditorError

if TYPE_CHECKING:
    from auditor.snapshot import Snapshot
    from connectors.base import Connector

#: source types whose data check-config reads from files
FILE_SOURCES = ("csv", "salesforce_export", "hubspot_export")
#: share of a date or amount column that may be unreadable before check-config calls it a
#: problem (a few bad cells are data to fix in the CRM; more means a wrong setting)
MAX_UNREADABLE_SHARE = 0.05


@dataclass
class DataReport:
    """What reading a file source found: lines to print, and problems (each names its fix)."""

    lines: list[str] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)


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


# -- live sources -------------------------------------------------------------------------

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
