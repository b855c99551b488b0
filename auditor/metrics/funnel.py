"""Funnel metrics from the stage history: lead quality, stage conversion, stage velocity.

All three need stage history; without it they report "not available" rather than guess (a lost
deal's furthest stage is unknown without history). Records without history in a source that has
it are left out and counted as ``excluded_no_history``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from auditor.metric_types import Metric
from auditor.metrics.base import (
    NO_HISTORY,
    OPEN_CODES,
    MetricInputs,
    mean_or_none,
    median_or_none,
    metric,
    ratio,
    unavailable,
)
from auditor.metrics.periods import NAT_DAY, Period
from auditor.paths import import_artefacts
from auditor.stages import STAGE_ORDER, STAGES

LEAD_QUALITY = (
    "Share of opportunities created in the period that reached qualification (were ever in "
    "qualification or a later open stage, or were won; stage history plus current stage), "
    "overall and by lead source. Opportunities without stage history, and ones an import "
    "created (their path starts at the import), are left out and counted."
)
STAGE_CONVERSION = (
    "For each open stage: of the opportunities that first entered it during the period, the "
    "share that has since moved on to a later open stage or was won (as of the audit day). "
    "'still_open' counts entrants still sitting in that stage, which may yet convert."
)
STAGE_VELOCITY = (
    "Median calendar days spent in each open stage, over stays that ended in the period (a stay "
    "runs from entering the stage to entering the next one). 'in_progress' is the median age, "
    "on the audit day, of open opportunities currently in that stage."
)


def _stages_used(mi: MetricInputs) -> list[str]:
    reached = mi.snap.meta.reached_stages
    return [s for s in STAGES[: len(OPEN_CODES)] if not reached or s in reached]


def lead_quality(mi: MetricInputs, periods: list[Period]) -> Metric:
    name = "lead_quality"
    if not mi.has_stage_history:
        return unavailable(name, LEAD_QUALITY, NO_HISTORY)
    if reason := mi.missing("created_at"):
        return unavailable(name, LEAD_QUALITY, reason)
    by_source = mi.provides("lead_source")
    source = mi.opp["lead_source"].fillna("(none)").astype(str).to_numpy() if by_source else None
    out: dict[str, Any] = {}
    # records an import created: their path starts at the import, so whether they reached
    # qualification is unknown (QL01 does not judge them either)
    imported, _ = import_artefacts(mi.snap, mi.ctx.audit.import_min_records)
    for p in periods:
        created = p.contains(mi.created_day)  # "all": every opportunity
        cohort = created & mi.with_history & ~imported
        reached = cohort & mi.reached_qualification
        row: dict[str, Any] = {
            "created": int(cohort.sum()),
            "reached_qualification": int(reached.sum()),
            "share": ratio(reached.sum(), cohort.sum()),
            "excluded_no_history": int((created & ~mi.with_history).sum()),
            "excluded_imported": int((created & mi.with_history & imported).sum()),
        }
        if source is not None:
            frame = pd.DataFrame({"src": source[cohort], "ok": reached[cohort]})
            g = frame.groupby("src", sort=True)["ok"].agg(["size", "sum"])
            row["by_lead_source"] = {
                str(k): {
                    "created": int(r["size"]),
                    "reached_qualification": int(r["sum"]),
                    "share": ratio(r["sum"], r["size"]),
                }
                for k, r in g.iterrows()
            }
        out[p.label] = row
    return metric(
        name,
        LEAD_QUALITY,
        by_lead_source_available=by_source,
        by_period=out,
    )


def _advanced_matrix(mi: MetricInputs) -> np.ndarray:
    """(opportunity × open stage) bool: visited a later open stage, or was won."""
    vis = mi.visited[:, OPEN_CODES]
    # suffix_any[:, s] = visited any open stage s.. (reverse cumulative OR)
    suffix_any = np.logical_or.accumulate(vis[:, ::-1], axis=1)[:, ::-1]
    later = np.zeros_like(vis)
    later[:, :-1] = suffix_any[:, 1:]
    won = mi.won | mi.visited[:, [STAGE_ORDER["closed_won"], STAGE_ORDER["handoff"]]].any(axis=1)
    return later | won[:, None]


def stage_conversion(mi: MetricInputs, periods: list[Period]) -> Metric:
    name = "stage_conversion"
    if not mi.has_stage_history:
        return unavailable(name, STAGE_CONVERSION, NO_HISTORY)
    sp = mi.spans
    sel = sp["first"].to_numpy() & (sp["code"].to_numpy() <= OPEN_CODES[-1])
    rows = sp["row"].to_numpy()[sel]
    codes = sp["code"].to_numpy()[sel].astype(np.int8, copy=False)  # 7 open stages
    days = sp["entered_day"].to_numpy()[sel]
    advanced = _advanced_matrix(mi)[rows, codes]
    still = mi.open[rows] & (mi.stage_code[rows] == codes)
    k = len(OPEN_CODES)
    # one small key per stay (stage, advanced, still open): one count per period gives all
    # three numbers per stage
    key = codes * np.int8(4) + advanced.view(np.int8) * np.int8(2) + still.view(np.int8)
    stages = _stages_used(mi)
    out: dict[str, Any] = {}
    for p in periods:
        cnt = np.bincount(key[p.contains(days)], minlength=4 * k).reshape(k, 4)
        entered = cnt.sum(axis=1)
        adv = cnt[:, 2] + cnt[:, 3]
        stl = cnt[:, 1] + cnt[:, 3]
        out[p.label] = {
            s: {
                "entered": int(entered[STAGE_ORDER[s]]),
                "advanced": int(adv[STAGE_ORDER[s]]),
                "still_open": int(stl[STAGE_ORDER[s]]),
                "rate": ratio(adv[STAGE_ORDER[s]], entered[STAGE_ORDER[s]]),
            }
            for s in stages
        }
    return metric(name, STAGE_CONVERSION, stages=stages, by_period=out)


def _per_stage(codes: np.ndarray, days: np.ndarray, stages: list[str]) -> dict[str, Any]:
    out = {}
    for s in stages:
        d = days[codes == STAGE_ORDER[s]]
        out[s] = {
            "stays": int(len(d)),
            "median_days": median_or_none(d),
            "mean_days": mean_or_none(d, 1),
        }
    return out


def stage_velocity(mi: MetricInputs, periods: list[Period]) -> Metric:
    name = "stage_velocity"
    if not mi.has_stage_history:
        return unavailable(name, STAGE_VELOCITY, NO_HISTORY)
    sp = mi.spans
    code = sp["code"].to_numpy().astype(np.int64)
    entered = sp["entered_day"].to_numpy()
    left = sp["left_day"].to_numpy()
    in_open = code <= OPEN_CODES[-1]
    done = in_open & (left != NAT_DAY)
    stages = _stages_used(mi)
    out: dict[str, Any] = {}
    for p in periods:
        m = done & p.contains(left)
        out[p.label] = _per_stage(code[m], left[m] - entered[m], stages)
    # open deals' current stay: the last stay of a row, still open at the audit day
    row = sp["row"].to_numpy()
    cur = in_open & (left == NAT_DAY) & mi.open[row] & (mi.stage_code[row] == code)
    progress = _per_stage(code[cur], mi.as_of_day - entered[cur], stages)
    in_progress = {
        s: {"open": v["stays"], "median_days": v["median_days"]} for s, v in progress.items()
    }
    return metric(name, STAGE_VELOCITY, stages=stages, by_period=out, in_progress=in_progress)
