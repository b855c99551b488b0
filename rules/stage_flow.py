"""ST rules: do deals move through the stages as the process says?"""

from __future__ import annotations

import numpy as np
import pandas as pd

from auditor.context import AuditContext
from auditor.derived import day_counts, jumped_over, regressions, visited
from auditor.paths import path_has_unmapped, reached_stages
from auditor.rule import (
    STAGE_HISTORY,
    Param,
    Rule,
    all_records,
    empty_everywhere,
    is_open,
    stage_in,
)
from auditor.snapshot import Snapshot
from auditor.stages import OPEN_STAGES, STAGES

#: never judged by ST01: lead is an optional entry point, qualification is QL01's job
_NOT_SKIPPABLE = ("lead", "qualification")


class SkippedStage(Rule):
    """Jumped over a stage its pipeline uses (per the stage history), other than qualification.

    A move in the history from stage a to a later stage b (b an open stage or closed_won) skips
    every stage s with a < s < b that the source's stage map reaches (``meta.reached_stages``)
    and that the deal never visited at any other time. Lead (an optional entry point) and
    qualification (QL01) are not judged; nor is the stage a deal was created in, nor a move to
    closed_lost (a deal may be lost from anywhere). The reached stages are the ones the source
    actually uses (its stage picklist / pipeline definition, else the stages its data holds),
    mapped: a pipeline without discovery therefore never produces "skipped discovery". Every
    deal with history is judged, open or closed; on a closed deal the finding is process
    history, not a to-do. Records without stage history, and records whose path includes a stage
    the stage map does not know, are not evaluable.

    Why it matters: each stage has a job (discovery finds the pain, solution maps the offer to
    it, negotiation settles terms). A deal that jumps a stage was advanced on hope; it
    forecasts too early and is more likely to stall or be lost late.

    How to fix: do the skipped stage's work now (and record it), or move the deal back to the
    skipped stage until its exit criteria are met.
    """

    code = "ST01"
    applies_to = "deals"
    name = "skipped-stage"
    severity = "warning"
    requires = ("stage", STAGE_HISTORY)
    example = {
        "as_of": "2026-03-31",
        "record": {"id": "OPP-3", "stage": "proposal"},
        "history": [
            ["contact", "2026-02-01"],
            ["qualification", "2026-02-05"],
            ["proposal", "2026-03-01"],
        ],
        "message": "skipped discovery, solution (history jumps past them)",
    }

    def _judged(self, snap: Snapshot) -> list[str]:
        reached = reached_stages(snap)
        return [s for s in OPEN_STAGES if s in reached and s not in _NOT_SKIPPABLE]

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        if not reached_stages(snap):
            return {"source declares no stage map (reached stages unknown)": all_records(snap)}
        # a path through a stage the map does not know cannot be placed: DQ03 names the stage
        unmapped = pd.Series(path_has_unmapped(snap), index=snap.opportunities.index)
        return {"stage path includes a stage the stage map does not know": unmapped}

    def _skipped(self, snap: Snapshot) -> pd.DataFrame:
        judged = self._judged(snap)
        return jumped_over(snap)[judged] & ~visited(snap)[judged]

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return self._skipped(snap).any(axis=1)

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        sk = self._skipped(snap).loc[rows]
        names = np.full(len(rows), "", dtype=object)
        for st in sk.columns:
            hit = sk[st].to_numpy()
            names[hit] = np.where(names[hit] == "", st, names[hit] + ", " + st)
        return pd.Series(
            "skipped " + names + " (history jumps past them)", index=rows, dtype="string[pyarrow]"
        )


class StageRegression(Rule):
    """Open deal whose stage history moves backwards from an open stage to an earlier one.

    Judged on open deals only: a regression on a closed deal is history with nothing left to
    fix. Consecutive entries of the same stage are not moves; moves into or out of closed
    stages (e.g. a reopened deal) are not regressions. Records without stage history are not
    evaluable.

    Why it matters: a deal that moves back was advanced before it met the stage's exit
    criteria. Its earlier stage dates overstate progress, and stage conversion and velocity
    metrics built on them are wrong.

    How to fix: check which exit criteria were missing when it advanced; keep the deal in the
    earlier stage until they are met, and coach on the stage definitions.
    """

    code = "ST02"
    applies_to = "open deals"
    name = "stage-regression"
    severity = "info"
    requires = ("stage", STAGE_HISTORY)
    example = {
        "as_of": "2026-03-31",
        "record": {"id": "OPP-4", "stage": "solution"},
        "history": [
            ["qualification", "2026-02-01"],
            ["discovery", "2026-02-10"],
            ["proposal", "2026-02-20"],
            ["solution", "2026-03-05"],
        ],
        "message": "moved back from proposal to solution",
    }

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return is_open(snap)

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return is_open(snap) & (regressions(snap)["count"] > 0)

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        reg = regressions(snap).loc[rows]
        names = np.array(STAGES, dtype=object)
        frm = names[reg["from_code"].to_numpy()]
        to = names[reg["to_code"].to_numpy()]
        count = reg["count"].to_numpy()
        n_moves = count.astype(str).astype(object)
        times = np.where(count > 1, " (" + n_moves + " backward moves)", "")
        return pd.Series(
            "moved back from " + frm + " to " + to + times, index=rows, dtype="string[pyarrow]"
        )


class StageAging(Rule):
    """Open deal that has been in its current stage longer than that stage's limit.

    Days in stage = whole calendar days from the day the current stage was entered
    (``stage_entered_at``, in the audit time zone) to the audit day; flagged when strictly
    greater than ``process.stage_limits[stage]`` (defaults: lead 14, contact 21, qualification
    30, discovery 30, solution 30, proposal 30, negotiation 45). Open deals with no stage entry
    date are not evaluable; deals in an unmapped stage are not judged (DQ03 flags them).

    Why it matters: deals that sit in a stage far longer than the process expects are usually
    stuck or dead; they inflate the pipeline and hide the real sales cycle.

    How to fix: find what blocks the deal and agree the step that moves it on; if it is not
    going to move, close it as lost with a reason.
    """

    code = "ST03"
    applies_to = "open deals in an open stage"
    name = "stage-aging"
    severity = "warning"
    requires = ("stage", "stage_entered_at")
    example = {
        "as_of": "2026-03-31",
        "record": {"id": "OPP-5", "stage": "proposal", "stage_entered_at": "2026-02-25T10:00:00Z"},
        "message": "34 days in proposal (limit 30)",
    }

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return is_open(snap) & stage_in(snap, OPEN_STAGES)

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        return {
            "open deal without stage entry date": is_open(snap)
            & snap.opportunities["stage_entered_at"].isna()
        }

    def _days_limit(self, snap: Snapshot, ctx: AuditContext) -> tuple[pd.Series, pd.Series]:
        opp = snap.opportunities
        # limit per stage code (categorical codes; -1 = unmapped → no limit)
        by_code = np.array([ctx.process.stage_limits.get(s, np.nan) for s in STAGES] + [np.nan])
        codes = opp["stage"].cat.codes.to_numpy()
        limit = pd.Series(by_code[codes], index=opp.index).astype("Float64")
        return day_counts(snap, ctx, "stage_entered_at"), limit

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        days, limit = self._days_limit(snap, ctx)
        return is_open(snap) & (days > limit).fillna(False).astype(bool)

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        days, limit = self._days_limit(snap, ctx)
        stage = snap.opportunities.loc[rows, "stage"].astype("string")
        return (
            days.loc[rows].astype("string")
            + " days in "
            + stage
            + " (limit "
            + limit.loc[rows].astype("Int64").astype("string")
            + ")"
        )


class StaleProposal(Rule):
    """Open deal in proposal/negotiation for over N days, with no activity for over M days.

    Days are whole calendar days (audit time zone), both limits strict ("more than"). A deal
    that never had an activity counts as idle since it was created (a fallback coverage counts).
    Records without a stage entry date are not evaluable, nor are those with neither an
    activity nor a creation date (as for FU03: their idle time is unknown); every record is
    when ``last_activity_at`` is empty in every record.

    Why it matters: a proposal that nobody follows up goes cold; buyers read silence as a lack of
    interest, and the deal keeps inflating the late-stage forecast long after it is dead.

    How to fix: follow up with the buyer and log the activity; if the deal is not moving,
    move its close date honestly or close it as lost with a reason.
    """

    code = "ST04"
    applies_to = "open deals in proposal or negotiation"
    name = "stale-proposal"
    severity = "warning"
    requires = ("stage", "stage_entered_at", "last_activity_at")
    example = {
        "as_of": "2026-03-31",
        "record": {
            "id": "OPP-6",
            "stage": "negotiation",
            "stage_entered_at": "2026-03-01T09:00:00Z",
            "last_activity_at": "2026-03-10T15:00:00Z",
        },
        "message": "negotiation for 30 days (limit 21), no activity for 21 days (limit 14)",
    }
    params = {
        "max_days": Param(
            int, 21, "days in proposal/negotiation before the deal may be stale", min=0
        ),
        "idle_days": Param(int, 14, "days without any activity that make it stale", min=0),
    }

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return stage_in(snap, ("proposal", "negotiation")) & is_open(snap)

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        opp = snap.opportunities
        return {
            **empty_everywhere(snap, "last_activity_at"),
            "stage entry date unknown": opp["stage_entered_at"].isna(),
            "no activity and no creation date": opp["last_activity_at"].isna()
            & opp["created_at"].isna(),
        }

    def fallbacks(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        opp = snap.opportunities
        return {"no activity logged: idle since creation": opp["last_activity_at"].isna()}

    def _days(self, snap: Snapshot, ctx: AuditContext) -> tuple[pd.Series, pd.Series]:
        in_stage = day_counts(snap, ctx, "stage_entered_at")
        # no activity ever logged counts from the day the deal was created
        idle = day_counts(snap, ctx, "last_activity_at|created_at")
        return in_stage, idle

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        in_stage, idle = self._days(snap, ctx)
        late = stage_in(snap, ("proposal", "negotiation")) & is_open(snap)
        idle_long = (idle > self.p["idle_days"]).fillna(False)  # unknown idle time: not judged
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
