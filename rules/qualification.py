"""QL rules: was the deal qualified before serious time went into it?"""

from __future__ import annotations

import numpy as np
import pandas as pd

from auditor.context import AuditContext
from auditor.derived import visited
from auditor.rule import STAGE_HISTORY, Rule, all_records
from auditor.snapshot import OPPORTUNITY_SCHEMA, Snapshot

#: common stages that count as "discovery or later" (won deals included)
_PAST_QUALIFICATION = ["discovery", "solution", "proposal", "negotiation", "closed_won", "handoff"]


class SkippedQualification(Rule):
    """Reached discovery or later (or was won) without ever being in qualification.

    Judged on the stage path (history plus current stage) of every deal, open or closed: a lost
    deal that reached discovery unqualified counts too, since the path is the process record.
    Records without stage history are not evaluable; so is every record when the source's
    pipeline has no qualification stage.

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
    example = {
        "as_of": "2026-03-31",
        "record": {"id": "OPP-1", "stage": "proposal"},
        "history": [
            ["contact", "2026-02-01"],
            ["discovery", "2026-02-10"],
            ["proposal", "2026-03-01"],
        ],
        "message": "reached proposal without a qualification stage in its history",
    }

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        if "qualification" not in snap.meta.reached_stages:
            # the source's pipeline has no qualification stage: nothing can be skipped
            return {"pipeline has no qualification stage": all_records(snap)}
        return {}

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        v = visited(snap)
        return v[_PAST_QUALIFICATION].any(axis=1) & ~v["qualification"]

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        # name the furthest stage past qualification the deal reached (a lost deal's current
        # stage, closed_lost, would say nothing)
        reached = visited(snap).loc[rows, _PAST_QUALIFICATION].to_numpy()
        furthest = len(_PAST_QUALIFICATION) - 1 - reached[:, ::-1].argmax(axis=1)
        stage = np.array(_PAST_QUALIFICATION, dtype=object)[furthest]
        return pd.Series(
            "reached " + stage + " without a qualification stage in its history",
            index=rows,
            dtype="string[pyarrow]",
        )


def _empty(col: pd.Series) -> pd.Series:
    """NA, or text that is empty / whitespace only (custom fields are not cast by the schema)."""
    missing = col.isna()
    if col.dtype == object or isinstance(col.dtype, pd.StringDtype):
        txt = col.astype("string")
        missing = missing | txt.str.strip().eq("").fillna(True)
    return missing.astype(bool)


class QualificationCriteriaMissing(Rule):
    """Past a stage whose exit criteria (configured fields) are still empty.

    The exit criteria come from ``process.exit_criteria`` (stage → list of fields); the shipped
    default is BANT for qualification (budget, authority, need, timeline). A deal is *past* a
    stage when its current common stage is later in the order and it is not closed lost (open
    and won deals count; a lost deal is history). Empty = NA, or text that is blank. When no
    exit criteria are configured, or a configured field is not in the data, no record is
    evaluable and the coverage note says which fields are missing. An unmapped stage (NA) is
    not past anything.

    Why it matters: exit criteria are what makes a stage mean something. A deal in proposal
    whose budget, authority, need and timeline were never captured was never really qualified:
    it is forecast on hope, and the team cannot tell which deals deserve its time.

    How to fix: capture the missing fields with the buyer (or record that they are unknown and
    move the deal back to the stage where they get answered).
    """

    code = "QL02"
    name = "qualification-criteria-missing"
    severity = "warning"
    requires = ("stage",)
    example = {
        "as_of": "2026-03-31",
        "record": {
            "id": "OPP-2",
            "stage": "proposal",
            "budget": "approved",
            "authority": None,
            "need": "reporting",
            "timeline": None,
        },
        "message": "past qualification without authority, timeline",
    }

    def _criteria(self, ctx: AuditContext) -> dict[str, list[str]]:
        return {s: list(f) for s, f in ctx.process.exit_criteria.items() if f}

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        crit = self._criteria(ctx)
        if not crit:
            return {"no exit criteria configured (process.exit_criteria)": all_records(snap)}
        opp = snap.opportunities
        absent = sorted(
            {
                f
                for fields in crit.values()
                for f in fields
                if f not in opp.columns
                or (f in OPPORTUNITY_SCHEMA and f not in snap.meta.provided_fields)
            }
        )
        if absent:
            reason = "exit-criteria field(s) not in the data: " + ", ".join(absent)
            return {reason: all_records(snap)}
        return {}

    def _missing(self, snap: Snapshot, ctx: AuditContext) -> list[tuple[str, str, pd.Series]]:
        """(stage, field, mask) for every configured field: past that stage and field empty."""
        opp = snap.opportunities
        stage = opp["stage"]
        not_lost = ~(stage == "closed_lost").fillna(False)
        out = []
        for st, fields in self._criteria(ctx).items():
            past = (stage > st).fillna(False).astype(bool) & not_lost
            for f in fields:
                out.append((st, f, past & _empty(opp[f])))
        return out

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        mask = pd.Series(False, index=snap.opportunities.index)
        for _, _, m in self._missing(snap, ctx):
            mask |= m
        return mask

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        # per stage: "past <stage> without f1, f2"; stages joined with "; "
        parts: dict[str, np.ndarray] = {}
        for st, f, m in self._missing(snap, ctx):
            hit = m.loc[rows].to_numpy()
            cur = parts.setdefault(st, np.full(len(rows), "", dtype=object))
            cur[hit] = np.where(cur[hit] == "", f, cur[hit] + ", " + f)
        msg = np.full(len(rows), "", dtype=object)
        for st, fields in parts.items():
            has = fields != ""
            piece = "past " + st + " without " + fields[has]
            msg[has] = np.where(msg[has] == "", piece, msg[has] + "; " + piece)
        return pd.Series(msg, index=rows, dtype="string[pyarrow]")
