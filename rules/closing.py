"""CL rules: are closed deals closed properly?"""

from __future__ import annotations

import pandas as pd

from auditor.context import AuditContext
from auditor.derived import day_counts
from auditor.rule import Param, Rule, is_lost, is_won, iso_day
from auditor.snapshot import Snapshot


class MissingLossReason(Rule):
    """Closed-lost deal without a loss reason.

    Lost = closed and not won: the CRM's flags when it has them, else stage closed_lost.

    Why it matters: loss reasons are how a team learns why it loses — price, product gaps,
    competitors, timing. Without them, win-rate problems cannot be diagnosed or fixed.

    How to fix: record the loss reason on the opportunity (ask the rep; if unknown, use an
    explicit "no decision / unknown" value so the gap is visible).
    """

    code = "CL01"
    applies_to = "lost deals"
    name = "missing-loss-reason"
    severity = "warning"
    closeout = True
    requires = ("stage", "loss_reason")
    example = {
        "as_of": "2026-03-31",
        "record": {"id": "OPP-13", "stage": "closed_lost", "loss_reason": None},
        "message": "closed lost with no loss reason",
    }

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return is_lost(snap)

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return is_lost(snap) & snap.opportunities["loss_reason"].isna()

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        return pd.Series("closed lost with no loss reason", index=rows, dtype="string[pyarrow]")


class WonWithoutAmount(Rule):
    """Closed-won deal with no amount, or an amount of zero or less.

    Won = ``is_won`` when the CRM says so, else stage closed_won or handoff.

    Why it matters: won revenue is what bookings, win rates by value, deal-size metrics and
    commissions are computed from. A win without an amount makes all of them wrong.

    How to fix: enter the contracted amount (and currency) on the opportunity.
    """

    code = "CL02"
    applies_to = "won deals"
    name = "won-without-amount"
    severity = "error"
    closeout = True
    requires = ("amount",)
    example = {
        "as_of": "2026-03-31",
        "record": {"id": "OPP-14", "stage": "closed_won", "amount": None},
        "message": "closed won with no amount",
    }

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return is_won(snap)

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        amount = snap.opportunities["amount"]
        return is_won(snap) & (amount.isna() | (amount <= 0).fillna(False)).astype(bool)

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        amount = snap.opportunities.loc[rows, "amount"]
        txt = "closed won with amount " + amount.astype("string")
        return txt.fillna("closed won with no amount").astype("string[pyarrow]")


class WonWithoutHandoff(Rule):
    """Deal won more than N days ago with no handoff recorded.

    Won = ``is_won`` when the CRM says so, else stage closed_won or handoff. Days since the win
    = whole calendar days since ``close_date``; flagged when strictly more than ``max_days``,
    ``handoff_at`` is empty and the deal is not in the handoff stage. Won deals without a close
    date are not evaluable; sources that do not provide ``handoff_at`` are not evaluable.

    Why it matters: the customer bought an outcome, not a contract. A win nobody handed over
    to onboarding or delivery risks a bad start, a late go-live and an early churn.

    How to fix: hand the account over (kick-off with delivery / customer success) and record
    the handoff date on the won deal.
    """

    code = "CL03"
    applies_to = "won deals not in handoff"
    name = "won-without-handoff"
    severity = "warning"
    closeout = True
    requires = ("close_date", "handoff_at")
    params = {"max_days": Param(int, 30, "days after the win by which a handoff is due", min=0)}
    example = {
        "as_of": "2026-03-31",
        "record": {
            "id": "OPP-15",
            "stage": "closed_won",
            "close_date": "2026-02-14",
            "handoff_at": None,
        },
        "message": "won 45 days ago (2026-02-14), no handoff recorded (due within 30 days)",
    }

    def _pending(self, snap: Snapshot) -> pd.Series:
        opp = snap.opportunities
        in_handoff = (opp["stage"] == "handoff").fillna(False).astype(bool)
        return is_won(snap) & ~in_handoff & opp["handoff_at"].isna()

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        in_handoff = (snap.opportunities["stage"] == "handoff").fillna(False).astype(bool)
        return is_won(snap) & ~in_handoff

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        no_date = snap.opportunities["close_date"].isna()
        return {"won deal without close date": self._pending(snap) & no_date}

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        days = day_counts(snap, ctx, "close_date")
        return self._pending(snap) & (days > self.p["max_days"]).fillna(False).astype(bool)

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        cd = snap.opportunities.loc[rows, "close_date"]
        return (
            "won "
            + ctx.days_since(cd).astype("string")
            + " days ago ("
            + iso_day(cd)
            + "), no handoff recorded (due within "
            + str(self.p["max_days"])
            + " days)"
        )
