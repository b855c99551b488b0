"""check-config checks, one function each (other checks live beside this one)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.config import AuditConfig


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
