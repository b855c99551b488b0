"""FU rules: does every open deal have a next step someone owns?"""

from __future__ import annotations

import pandas as pd

from auditor.context import AuditContext
from auditor.snapshot import Snapshot
from rules.base import Rule, is_open, stage_at_least


class MissingNextStep(Rule):
    """Open deal past first contact with no next step and no scheduled next activity.

    Why it matters: a deal without an agreed next step is a deal nobody is moving. Deals past
    first contact that lack one stall silently, and the forecast keeps counting them.

    How to fix: agree the next step with the buyer and record it (next step text, or a dated
    next activity) on the opportunity.
    """

    code = "FU01"
    name = "missing-next-step"
    severity = "warning"
    requires = ("stage",)

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        provided = snap.meta.provided_fields
        if not ({"next_step", "next_step_due"} & provided):
            return {
                "source provides neither next_step nor next_step_due": pd.Series(
                    True, index=snap.opportunities.index
                )
            }
        return {}

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        opp = snap.opportunities
        no_step = opp["next_step"].isna() & opp["next_step_due"].isna()
        return is_open(snap) & stage_at_least(snap, "qualification") & no_step

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        stage = snap.opportunities.loc[rows, "stage"].astype("string")
        return "open in " + stage + " with no next step or next activity"
