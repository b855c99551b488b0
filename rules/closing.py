"""CL rules: are closed deals closed properly?"""

from __future__ import annotations

import pandas as pd

from auditor.context import AuditContext
from auditor.snapshot import Snapshot
from rules.base import Rule


def is_lost(snap: Snapshot) -> pd.Series:
    opp = snap.opportunities
    by_flags = opp["is_closed"].fillna(False) & ~opp["is_won"].fillna(False)
    known = opp["is_closed"].notna() & opp["is_won"].notna()
    return (opp["stage"] == "closed_lost").fillna(False) | (by_flags & known & opp["stage"].isna())


class MissingLossReason(Rule):
    """Closed-lost deal without a loss reason.

    Why it matters: loss reasons are how a team learns why it loses — price, product gaps,
    competitors, timing. Without them, win-rate problems cannot be diagnosed or fixed.

    How to fix: record the loss reason on the opportunity (ask the rep; if unknown, use an
    explicit "no decision / unknown" value so the gap is visible).
    """

    code = "CL01"
    name = "missing-loss-reason"
    severity = "warning"
    requires = ("stage", "loss_reason")

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return is_lost(snap) & snap.opportunities["loss_reason"].isna()

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        return pd.Series("closed lost with no loss reason", index=rows, dtype="string[pyarrow]")
