"""Skipped-stage logic respects the source's pipeline (DESIGN §3)."""

from __future__ import annotations

import pandas as pd

from auditor.engine import run_audit
from auditor.stages import StageMap
from rules.testing import build_config, build_snapshot

# HubSpot's default pipeline: qualifiedtobuy → presentationscheduled (qualification → solution)
CASE = {
    "name": "hubspot deals",
    "opportunities": [
        {"id": "H1", "stage": "solution"},
        {"id": "H2", "stage": "proposal"},
        {"id": "H3", "stage": "closed_won"},
    ],
    "history": {
        "H1": [["contact", "2026-01-05"], ["qualification", "2026-01-10"],
               ["solution", "2026-02-01"]],
        "H2": [["qualification", "2026-01-10"], ["solution", "2026-02-01"],
               ["proposal", "2026-02-10"]],
        "H3": [["qualification", "2026-01-10"], ["solution", "2026-01-20"],
               ["proposal", "2026-02-01"], ["negotiation", "2026-02-10"],
               ["closed_won", "2026-03-01"]],
    },
}  # fmt: skip


def _st01(reached: frozenset[str]) -> dict[str, str]:
    case = {**CASE, "meta": {"reached_stages": sorted(reached)}}
    result = run_audit(build_snapshot(case), build_config("ST01", case), as_of="2026-03-31")
    v = pd.concat([result.violations, result.process])  # H3 is won: process history
    return dict(zip(v["opportunity_id"], v["message"], strict=True))


def test_pipeline_without_discovery_has_no_skipped_discovery() -> None:
    hubspot = StageMap.build("hubspot").reached
    assert "discovery" not in hubspot
    assert _st01(hubspot) == {}


def test_same_history_on_a_pipeline_with_discovery_is_flagged() -> None:
    salesforce = StageMap.build("salesforce").reached
    assert "discovery" in salesforce
    flagged = _st01(salesforce)
    assert flagged == {
        "H1": "skipped discovery (history jumps past them)",
        "H2": "skipped discovery (history jumps past them)",
        "H3": "skipped discovery (history jumps past them)",
    }
