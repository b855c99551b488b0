"""QL rules: was the deal qualified before serious time went into it?"""

from __future__ import annotations

import pandas as pd

from auditor.context import AuditContext
from auditor.derived import visited
from auditor.snapshot import Snapshot
from rules.base import STAGE_HISTORY, Rule

#: common stages that count as "discovery or later" (won deals included)
_PAST_QUALIFICATION = ["discovery", "solution", "proposal", "negotiation", "closed_won", "handoff"]


class SkippedQualification(Rule):
    """Reached discovery or later (or was won) without ever being in qualification.

    Why it matters: qualification is where a team decides a deal deserves serious time — fit,
    need, authority, budget, timing. Deals that skip it inflate the pipeline with opportunities
    nobody checked, and they are the ones that slip and die late in the forecast.

    How to fix: qualify the deal now (fill the qualification fields and record the
    qualification stage), or move it back to qualification until it is.
    """

    code = "QL01"
    name = "skipped-qualification"
    severity = "error"
    requires = ("stage", STAGE_HISTORY)

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        if "qualification" not in snap.meta.reached_stages:
            # the source's pipeline has no qualification stage: nothing can be skipped
            return {
                "pipeline has no qualification stage": pd.Series(
                    True, index=snap.opportunities.index
                )
            }
        return {}

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        v = visited(snap)
        return v[_PAST_QUALIFICATION].any(axis=1) & ~v["qualification"]

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        stage = snap.opportunities.loc[rows, "stage"].astype("string")
        return "reached " + stage + " without a qualification stage in its history"
