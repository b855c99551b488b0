"""QL rules: was the deal qualified before serious time went into it?"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from auditor.context import AuditContext
from auditor.derived import visited
from auditor.paths import (
    first_history_code,
    import_artefacts,
    path_has_unmapped,
    reached_stages,
)
from auditor.rule import STAGE_HISTORY, Rule, all_records
from auditor.snapshot import OPPORTUNITY_SCHEMA, Snapshot
from auditor.stages import STAGE_ORDER

#: common stages that count as "discovery or later" (won deals included)
_PAST_QUALIFICATION = ["discovery", "solution", "proposal", "negotiation", "closed_won", "handoff"]
_PAST_CODES = [STAGE_ORDER[s] for s in _PAST_QUALIFICATION]


class SkippedQualification(Rule):
    """Reached discovery or later (or was won) without ever being in qualification.

    Applies to every deal whose stage path (history plus current stage) reached discovery or
    later, open or closed; on a closed deal the finding is process history, not a to-do. A path
    that *starts* past qualification (the deal was created there: converted from a qualified
    Salesforce lead, or loaded by an import at its current stage) records nothing about
    qualification, so it is not evaluable and coverage names it (imports separately); with
    ``audit.strict_history`` it is judged as recorded. Also not evaluable: records without
    stage history, records whose path includes a stage the stage map does not know, and every
    record when the stages the source uses have no qualification stage.

    Why it matters: qualification is where a team decides a deal deserves serious time — fit,
    need, authority, budget, timing. Deals that skip it inflate the pipeline with opportunities
    nobody checked, and they are the ones that slip and die late in the forecast.

    How to fix: qualify the deal now (fill the qualification fields and record the
    qualification stage), or move it back to qualification until it is.
    """

    code = "QL01"
    applies_to = "deals past qualification"
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

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return visited(snap)[_PAST_QUALIFICATION].any(axis=1)

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        if "qualification" not in reached_stages(snap):
            # the source's pipeline has no qualification stage: nothing can be skipped
            return {"pipeline has no qualification stage": all_records(snap)}
        idx = snap.opportunities.index
        out = {
            "stage path includes a stage the stage map does not know": pd.Series(
                path_has_unmapped(snap), index=idx
            )
        }
        if not ctx.audit.strict_history:
            late = np.isin(first_history_code(snap), _PAST_CODES)
            imported, _ = import_artefacts(snap, ctx.audit.import_min_records)
            out["history starts at an import, past qualification"] = pd.Series(
                late & imported, index=idx
            )
            out["history starts past qualification (created there)"] = pd.Series(late, index=idx)
        return out

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
    missing = col.isna().to_numpy(dtype=bool).copy()
    if col.dtype == object or isinstance(col.dtype, pd.StringDtype):
        # Arrow tests the text in place (str.strip() built a new string per record)
        txt = pa.array(col.astype("string[pyarrow]").array)
        blank = pc.or_(pc.equal(pc.binary_length(txt), 0), pc.utf8_is_space(txt))
        missing |= blank.fill_null(True).to_numpy(zero_copy_only=False)
    return pd.Series(missing, index=col.index)


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
    applies_to = "open or won deals past a stage with exit criteria"
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

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        stage = snap.opportunities["stage"]
        not_lost = ~(stage == "closed_lost").fillna(False).astype(bool)
        crit = self._criteria(ctx)
        if not crit:  # nothing configured: every deal it could judge is not evaluable
            return not_lost
        mask = pd.Series(False, index=snap.opportunities.index)
        for st in crit:
            mask |= (stage > st).fillna(False).astype(bool)
        return mask & not_lost

    def _missing(self, snap: Snapshot, ctx: AuditContext) -> list[tuple[str, str, pd.Series]]:
        """(stage, field, mask) for every configured field: past that stage and field empty."""
        crit = tuple((st, tuple(f)) for st, f in self._criteria(ctx).items())
        return snap.memo.get(("rule", self.code, "missing", crit),
                             lambda: self._build_missing(snap, ctx))

    def _build_missing(
        self, snap: Snapshot, ctx: AuditContext
    ) -> list[tuple[str, str, pd.Series]]:
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
