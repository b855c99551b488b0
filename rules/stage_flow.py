"""ST rules: do deals move through the stages as the process says?"""

from __future__ import annotations

import pandas as pd

from auditor.context import AuditContext
from auditor.snapshot import Snapshot
from rules.base import Param, Rule, is_open, stage_in


class StaleProposal(Rule):
    """Deal in proposal or negotiation for more than N days with no activity for more than M days.

    Why it matters: a proposal that nobody follows up goes cold; buyers read silence as a lack of
    interest, and the deal keeps inflating the late-stage forecast long after it is dead.

    How to fix: follow up with the buyer and log the activity; if the deal is not moving,
    move its close date honestly or close it as lost with a reason.
    """

    code = "ST04"
    name = "stale-proposal"
    severity = "warning"
    requires = ("stage", "stage_entered_at", "last_activity_at")
    params = {
        "max_days": Param(
            int, 21, "days in proposal/negotiation before the deal may be stale", min=0
        ),
        "idle_days": Param(int, 14, "days without any activity that make it stale", min=0),
    }

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        return {"stage entry date unknown": snap.opportunities["stage_entered_at"].isna()}

    def _days(self, snap: Snapshot, ctx: AuditContext) -> tuple[pd.Series, pd.Series]:
        opp = snap.opportunities
        in_stage = ctx.days_since(opp["stage_entered_at"])
        # no activity ever logged counts from the day the deal was created
        last = opp["last_activity_at"].fillna(opp["created_at"])
        idle = ctx.days_since(last)
        return in_stage, idle

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        in_stage, idle = self._days(snap, ctx)
        late = stage_in(snap, ("proposal", "negotiation")) & is_open(snap)
        idle_long = (idle > self.p["idle_days"]).fillna(True)
        return late & (in_stage > self.p["max_days"]).fillna(False) & idle_long

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        in_stage, idle = self._days(snap, ctx)
        stage = snap.opportunities.loc[rows, "stage"].astype("string")
        idle_txt = idle.loc[rows].astype("string").fillna("?")
        return (
            stage
            + " for "
            + in_stage.loc[rows].astype("string")
            + " days (limit "
            + str(self.p["max_days"])
            + "), no activity for "
            + idle_txt
            + " days (limit "
            + str(self.p["idle_days"])
            + ")"
        )
