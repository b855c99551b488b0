"""FU rules: does every open deal have a next step someone owns?"""

from __future__ import annotations

import pandas as pd

from auditor.context import AuditContext
from auditor.derived import day_counts
from auditor.lifecycle import open_in_outcome_stage
from auditor.rule import (
    Param,
    Rule,
    empty_everywhere,
    is_open,
    iso_day,
    open_and_past,
    stage_at_least,
)
from auditor.snapshot import Snapshot


class MissingNextStep(Rule):
    """Open deal past first contact with no next step and no scheduled next activity.

    Applies to open deals past first contact (current stage qualification or later). "No next
    step" = both ``next_step`` (text) and ``next_step_due`` (date) are empty. Not evaluable when
    the source provides neither field, or when the next-step field is hidden from the
    integration user (every deal would look as if it had none). A deal the CRM's flags keep
    open while its stage maps to a closed outcome (the lifecycle follows the flags; the
    validator warns about the contradiction) is not evaluable either: its stage says nothing
    about where in the open process it is.

    Why it matters: a deal without an agreed next step is a deal nobody is moving. Deals past
    first contact that lack one stall silently, and the forecast keeps counting them.

    How to fix: agree the next step with the buyer and record it (next step text, or a dated
    next activity) on the opportunity.
    """

    code = "FU01"
    applies_to = "open deals past first contact"
    name = "missing-next-step"
    severity = "warning"
    requires = ("stage",)
    example = {
        "as_of": "2026-03-31",
        "record": {"id": "OPP-7", "stage": "discovery", "next_step": None, "next_step_due": None},
        "message": "open in discovery with no next step or next activity",
    }

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        provided = snap.meta.provided_fields
        hidden = snap.meta.unreadable_fields.get("next_step")
        if hidden:  # every deal would look as if it had no next step
            return {f"field {hidden} is not readable by the integration user": pd.Series(
                True, index=snap.opportunities.index)}
        if not ({"next_step", "next_step_due"} & provided):
            return {
                "source provides neither next_step nor next_step_due": pd.Series(
                    True, index=snap.opportunities.index
                )
            }
        reason = "open deal in a closed stage (the CRM's flags say open)"
        return {reason: open_in_outcome_stage(snap.opportunities)}

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return is_open(snap) & stage_at_least(snap, "qualification")

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        opp = snap.opportunities
        no_step = opp["next_step"].isna() & opp["next_step_due"].isna()
        judged = stage_at_least(snap, "qualification") & ~open_in_outcome_stage(snap.opportunities)
        return is_open(snap) & judged & no_step

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        stage = snap.opportunities.loc[rows, "stage"].astype("string")
        return "open in " + stage + " with no next step or next activity"


class OverdueNextStep(Rule):
    """Open deal whose next-step date is in the past.

    Overdue = ``next_step_due`` strictly before the audit day (a step due today is not late).
    Applies to open deals; one without a next-step date is not evaluable here (FU01's
    business).

    Why it matters: an overdue next step means the agreed follow-up did not happen, or happened
    and nobody updated the deal. Either way the buyer is waiting or the CRM is wrong.

    How to fix: do the step (or reschedule it with the buyer) and update the next-step date.
    """

    code = "FU02"
    applies_to = "open deals"
    name = "overdue-next-step"
    severity = "warning"
    requires = ("next_step_due",)
    example = {
        "as_of": "2026-03-31",
        "record": {
            "id": "OPP-8",
            "stage": "solution",
            "next_step": "Send proposal",
            "next_step_due": "2026-03-20",
        },
        "message": "next step due 2026-03-20, 11 days overdue",
    }

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return is_open(snap)

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        # no date: FU01's business; not counted as a passed check here
        return {"open deal without a next-step date": snap.opportunities["next_step_due"].isna()}

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return open_and_past(snap, ctx, "next_step_due")

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        due = snap.opportunities.loc[rows, "next_step_due"]
        return (
            "next step due "
            + iso_day(due)
            + ", "
            + ctx.days_since(due).astype("string")
            + " days overdue"
        )


class NoRecentActivity(Rule):
    """Open deal with no logged activity for more than N days.

    Idle days = whole calendar days since ``last_activity_at`` (audit time zone), or since
    ``created_at`` when the deal never had an activity (a fallback coverage counts); flagged
    when strictly more than ``max_days``. Applies to open deals; those with neither date are not
    evaluable, and so is every deal when ``last_activity_at`` is empty in every record (the
    source does not track activities there: idle-since-creation would flag everything).

    Why it matters: deals nobody touches are not being sold. Silence is the strongest early
    signal that a deal is lost, and it keeps counting in the pipeline until someone looks.

    How to fix: contact the buyer and log it; if the deal is dead, close it as lost with a
    reason.
    """

    code = "FU03"
    applies_to = "open deals"
    name = "no-recent-activity"
    severity = "warning"
    requires = ("last_activity_at",)
    params = {"max_days": Param(int, 30, "days without any activity on an open deal", min=0)}
    example = {
        "as_of": "2026-03-31",
        "record": {
            "id": "OPP-9",
            "stage": "discovery",
            "created_at": "2026-01-05T10:00:00Z",
            "last_activity_at": "2026-02-14T16:00:00Z",
        },
        "message": "no activity for 45 days (limit 30)",
    }

    def _idle(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return day_counts(snap, ctx, "last_activity_at|created_at")

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return is_open(snap)

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        opp = snap.opportunities
        none = opp["last_activity_at"].isna() & opp["created_at"].isna()
        return {
            **empty_everywhere(snap, "last_activity_at"),
            "open deal with no activity and no creation date": is_open(snap) & none,
        }

    def fallbacks(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        opp = snap.opportunities
        return {"no activity logged: idle since creation": opp["last_activity_at"].isna()}

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        idle = self._idle(snap, ctx)
        return is_open(snap) & (idle > self.p["max_days"]).fillna(False).astype(bool)

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        idle = self._idle(snap, ctx).loc[rows].astype("string")
        never = snap.opportunities.loc[rows, "last_activity_at"].isna()
        lead = pd.Series("no activity for ", index=rows, dtype="string[pyarrow]")
        lead = lead.where(~never, "no activity since it was created ")
        suffix = pd.Series(" days", index=rows, dtype="string[pyarrow]")
        suffix = suffix.where(~never, " days ago")
        return lead + idle + suffix + " (limit " + str(self.p["max_days"]) + ")"
