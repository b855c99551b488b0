"""Test a rule on a handful of records: build a Snapshot and a config from a small case dict.

Used by the built-in rule cases (tests/rules/cases/*.json, format in tests/rules/README.md) and
meant for plugin authors too::

    case = {"opportunities": [{"id": "A", "stage": "proposal", "amount": 900}]}
    result = run_audit(build_snapshot(case), build_config("XP01", case), as_of="2026-03-31")
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from auditor.config import AuditConfig, parse_config
from auditor.snapshot import (
    OPPORTUNITY_SCHEMA,
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_owners,
    make_stage_history,
)
from auditor.stages import STAGES

DEFAULT_AS_OF = "2026-03-31"


def build_snapshot(case: dict[str, Any]) -> Snapshot:
    """A validated Snapshot from a case: opportunities, history, owners, meta overrides."""
    records = []
    for rec in case.get("opportunities", []):
        r = {"source": "test", "name": rec.get("id"), **rec}
        r.setdefault("url", f"https://crm.invalid/{rec['id']}")
        records.append(r)
    opp = make_opportunities(pd.DataFrame.from_records(records))
    # stage is categorical: stages given as None stay NA (unmapped)
    rows = [
        # a null stage is a source stage the map does not know
        {"opportunity_id": oid, "stage": st, "source_stage": st or "(unmapped)", "entered_at": at}
        for oid, path in case.get("history", {}).items()
        for st, at in path
    ]
    hist = make_stage_history(pd.DataFrame(rows) if rows else None)
    owners = make_owners(pd.DataFrame(case["owners"]) if case.get("owners") else None)
    meta_cfg = case.get("meta", {})
    extras = {c for c in opp.columns if c not in OPPORTUNITY_SCHEMA}
    provided = set(meta_cfg.get("provided_fields", set(OPPORTUNITY_SCHEMA) | extras))
    provided -= set(meta_cfg.get("not_provided", []))
    meta = SnapshotMeta(
        source="test",
        source_type="test",
        provided_fields=frozenset(provided),
        has_stage_history=meta_cfg.get("has_stage_history", True),
        reached_stages=frozenset(meta_cfg.get("reached_stages", STAGES)),
        stage_expectations=dict(meta_cfg.get("stage_expectations", {})),
    )
    return Snapshot(opp, hist, owners, meta).validate()


def build_config(code: str, case: dict[str, Any]) -> AuditConfig:
    """A config selecting only rule ``code``, with the case's params / process / audit tables."""
    data: dict[str, Any] = {
        "source": {"type": "demo"},
        "rules": {"select": [code], code: case.get("params", {})},
    }
    if "process" in case:
        data["process"] = case["process"]
    if "audit" in case:
        data["audit"] = case["audit"]
    return parse_config(data, origin=f"case {case.get('name')}")
