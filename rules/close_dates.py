"""CD rules: are close dates and forecasts honest?"""

from __future__ import annotations

import pandas as pd

from auditor.context import AuditContext
from auditor.rule import Param, Rule, all_records, is_open, iso_day, open_and_past
from auditor.snapshot import Snapshot
from auditor.stages import STAGES


class CloseDatePast(Rule):
    """Open deal whose close date is in the past.

    Flagged when ``close_date`` is strictly before the audit day (closing today is fine). Open
    deals without a close date are not evaluable.

    Why it matters: the forecast counts this deal in a period that is already over. Past close
    dates are the most common reason a forecast is fiction.

    How to fix: agree a realistic close date with the buyer and update it, or close the deal.
    """

    code = "CD01"
    applies_to = "open deals"
    name = "close-date-past"
    severity = "error"
    requires = ("close_date",)
    example = {
        "as_of": "2026-03-31",
        "record": {"id": "OPP-10", "stage": "negotiation", "close_date": "2026-03-15"},
        "message": "close date 2026-03-15 is 16 days in the past",
    }

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return is_open(snap)

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        return {
            "open deal without close date": is_open(snap) & snap.opportunities["close_date"].isna()
        }

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return open_and_past(snap, ctx, "close_date")

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        cd = snap.opportunities.loc[rows, "close_date"]
        return (
            "close date "
            + iso_day(cd)
            + " is "
            + ctx.days_since(cd).astype("string")
            + " days in the past"
        )


class CloseDateSlipping(Rule):
    """Open deal whose close date has been changed N or more times.

    Uses ``close_date_changes`` (the number of times the close date was changed, as counted by
    the connector from field history); flagged when it is at least ``min_changes``. Open deals
    only; open deals with an unknown count are not evaluable.

    Why it matters: a deal whose close date keeps moving is not under control. Each push
    carries the amount into the next period's forecast, where it slips again.

    How to fix: find the real buying process and timeline with the buyer (who signs, what has
    to happen first) and set a close date based on it — or close the deal.
    """

    code = "CD02"
    applies_to = "open deals"
    name = "close-date-slipping"
    severity = "warning"
    requires = ("close_date_changes",)
    params = {"min_changes": Param(int, 3, "close-date changes that make a deal slipping", min=1)}
    example = {
        "as_of": "2026-03-31",
        "record": {"id": "OPP-11", "stage": "proposal", "close_date_changes": 4},
        "message": "close date changed 4 times (flagged from 3)",
    }

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return is_open(snap)

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        unknown = snap.opportunities["close_date_changes"].isna()
        return {"open deal with unknown close-date change count": is_open(snap) & unknown}

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        n = snap.opportunities["close_date_changes"]
        return is_open(snap) & (n >= self.p["min_changes"]).fillna(False).astype(bool)

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        n = snap.opportunities.loc[rows, "close_date_changes"].astype("string")
        return (
            "close date changed " + n + " times (flagged from " + str(self.p["min_changes"]) + ")"
        )


class ForecastStageMismatch(Rule):
    """Open deal forecast as Commit, or at high probability, while still early in the process.

    Applies to open deals whose stage is before ``before_stage`` (default proposal); unmapped
    stages (NA) are not judged. Flagged when the deal's ``forecast_category`` is one of
    ``categories`` (default commit), or its ``probability`` is at least ``min_probability``
    (default 0.7) — in both cases only when it goes beyond what the deal's own stage expects:
    the source's stage probability and forecast category (Salesforce
    ``OpportunityStage.DefaultProbability`` / ``ForecastCategoryName``, HubSpot stage
    probability), else ``process.stage_probability`` for the common stage. A deal at its stage's
    stock value is never flagged (Perception Analysis expects 70 %); with no expectation known,
    the thresholds alone decide. Not evaluable when the source provides neither forecast
    category nor probability.

    Why it matters: a deal that has not seen a proposal cannot honestly be committed. These
    deals make the commit forecast look safe when it is not.

    How to fix: forecast the deal by where it really is (pipeline / best case), or, if it is
    really that far, move it to the right stage with the proposal recorded.
    """

    code = "CD03"
    applies_to = "open deals before the committed stage"
    name = "forecast-stage-mismatch"
    severity = "error"
    requires = ("stage",)
    params = {
        "min_probability": Param(float, 0.7, "probability (0..1) that counts as high", min=0),
        "categories": Param(list, ["commit"], "forecast categories that count as committed"),
        "before_stage": Param(
            str, "proposal", "deals before this stage may not be committed", choices=STAGES
        ),
    }
    example = {
        "as_of": "2026-03-31",
        "record": {
            "id": "OPP-12",
            "stage": "discovery",
            "forecast_category": "commit",
            "probability": 0.8,
        },
        "message": "forecast commit at 80% while in discovery (before proposal)",
    }

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        early = (snap.opportunities["stage"] < self.p["before_stage"]).fillna(False)
        return is_open(snap) & early.astype(bool)

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        if not ({"forecast_category", "probability"} & snap.meta.provided_fields):
            return {"source provides neither forecast_category nor probability": all_records(snap)}
        return {}

    def _expected(self, snap: Snapshot, ctx: AuditContext) -> tuple[pd.Series, pd.Series]:
        """(expected probability, expected forecast category) of each deal's stage."""
        opp = snap.opportunities
        exp = snap.meta.stage_expectations
        # a handful of distinct stages: look up the distinct values, then take by code
        codes, uniq = pd.factorize(opp["source_stage"])
        uniq = [str(u) for u in uniq]
        prob_u = [exp.get(u, {}).get("probability") for u in uniq]
        cat_u = [exp.get(u, {}).get("forecast_category") for u in uniq]
        prob = pd.array(prob_u, dtype="Float64").take(codes, allow_fill=True)
        cat = pd.array(cat_u, dtype="string").take(codes, allow_fill=True)
        by_common = {k: float(v) for k, v in ctx.process.stage_probability.items()}
        stage = opp["stage"]
        common_c = [by_common.get(str(c)) for c in stage.cat.categories]
        common = pd.array(common_c, dtype="Float64").take(stage.cat.codes.to_numpy(),
                                                          allow_fill=True)
        idx = opp.index
        prob_s = pd.Series(prob, index=idx).fillna(pd.Series(common, index=idx))
        return prob_s, pd.Series(cat, index=idx)

    def _flags(self, snap: Snapshot, ctx: AuditContext) -> tuple[pd.Series, pd.Series]:
        opp = snap.opportunities
        exp_p, exp_c = self._expected(snap, ctx)
        cats = self.p["categories"]
        committed = opp["forecast_category"].isin(cats).fillna(False).astype(bool)
        committed &= ~exp_c.isin(cats).fillna(False).astype(bool)
        p = opp["probability"]
        high = (p >= self.p["min_probability"]).fillna(False).astype(bool)
        high &= (p > exp_p).fillna(True).astype(bool)  # unknown expectation: threshold only
        return committed, high

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        committed, high = self._flags(snap, ctx)
        return self.applies(snap, ctx) & (committed | high)

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        opp = snap.opportunities.loc[rows, ["forecast_category", "probability", "stage"]]
        fc = opp["forecast_category"].astype("string").fillna("no category")
        pct = (opp["probability"] * 100).round().astype("Int64").astype("string")
        pct = (" at " + pct + "%").fillna("")
        exp_p = self._expected(snap, ctx)[0].loc[rows]
        exp_txt = (exp_p * 100).round().astype("Int64").astype("string")
        expects = ("; the stage expects " + exp_txt + "%").fillna("")
        return (
            "forecast "
            + fc
            + pct
            + " while in "
            + opp["stage"].astype("string")
            + " (before "
            + self.p["before_stage"]
            + ")"
            + expects
        )
