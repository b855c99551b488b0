"""Metrics on a hand-built snapshot: every value below is computed by hand from the CSV files.

tests/auditor/data/metrics_opportunities.csv and metrics_history.csv hold 12 deals; the audit
day is 2026-11-26, so the default periods are 2026-Q3 (Jul 1 – Sep 30) and 2026-Q4 (Oct 1 –
Dec 31). The comments next to each expected value show the arithmetic.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from auditor.config import MetricsSection
from auditor.context import AuditContext
from auditor.metrics import METRIC_NAMES, compute_metrics, hygiene_scores
from auditor.results import VIOLATION_COLUMNS, AuditResult
from auditor.snapshot import (
    OPPORTUNITY_SCHEMA,
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_owners,
    make_stage_history,
)
from auditor.stages import STAGES


def metrics_json(*args: object) -> dict:
    """compute_metrics as metrics.json holds it (the values these tests check)."""
    return compute_metrics(*args).to_dict()  # type: ignore[arg-type]

DATA = Path(__file__).parent / "data"
AS_OF = "2026-11-26"
Q3, Q4 = "2026-Q3", "2026-Q4"
TARGETS = {"2026-Q3": 50_000.0, "2026-Q4": 200_000.0, "2027-Q1": 1.0}


def _snapshot(history: bool = True, provided: frozenset[str] | None = None) -> Snapshot:
    raw = pd.read_csv(DATA / "metrics_opportunities.csv", dtype=str)
    for col in ("is_closed", "is_won"):
        raw[col] = raw[col].map({"true": True, "false": False})
    for col in ("amount", "probability"):
        raw[col] = raw[col].astype(float)
    hist = pd.read_csv(DATA / "metrics_history.csv", dtype=str) if history else None
    owners = pd.DataFrame(
        {
            "id": ["U1", "U2", "U3"],
            "name": ["Ann", "Ben", "Cara"],
            "team": ["A", "A", "B"],
            "active": [True, True, True],
        }
    )
    fields = frozenset(OPPORTUNITY_SCHEMA) | {"segment"} if provided is None else provided
    meta = SnapshotMeta(
        source="hand",
        source_type="test",
        provided_fields=fields,
        has_stage_history=history,
        reached_stages=frozenset(STAGES),
    )
    return Snapshot(
        make_opportunities(raw), make_stage_history(hist), make_owners(owners), meta
    ).validate()


def _result(ctx: AuditContext, rows: list[tuple[str, str]] | None = None) -> AuditResult:
    rows = rows or []
    v = pd.DataFrame({c: pd.Series(dtype="string[pyarrow]") for c in VIOLATION_COLUMNS})
    if rows:
        v = pd.DataFrame(
            {
                "rule_code": "XX01",
                "severity": [s for _, s in rows],
                "opportunity_id": [i for i, _ in rows],
            }
        ).reindex(columns=VIOLATION_COLUMNS)
    return AuditResult(v, v.iloc[0:0], pd.DataFrame(), [], [], ctx)


@pytest.fixture(scope="module")
def metrics() -> dict:
    snap = _snapshot()
    ctx = AuditContext.create(AS_OF)
    cfg = MetricsSection(targets=TARGETS, segment_field="segment")
    return metrics_json(snap, _result(ctx), ctx, cfg)


def test_periods_and_counts(metrics: dict) -> None:
    assert metrics["as_of"] == AS_OF
    assert metrics["periods"] == [
        {"key": "last_quarter", "label": Q3, "start": "2026-07-01", "end": "2026-09-30"},
        {"key": "current_quarter", "label": Q4, "start": "2026-10-01", "end": "2026-12-31"},
    ]
    assert metrics["counts"] == {
        "opportunities": 12,
        "open": 5,  # O6 O7 O8 O9 O10
        "closed": 7,
        "won": 4,  # O1 O3 O5 O12
        "lost": 3,  # O2 O4 O11
        "open_amount": 109_000.0,  # 40000 + 12000 + 50000 + 7000 (O9 has none)
        "with_stage_history": 11,  # all but O10
    }
    assert metrics["metric_names"] == list(METRIC_NAMES)
    for name in METRIC_NAMES:
        assert metrics[name]["name"] == name
        assert metrics[name]["available"] is True
        assert len(metrics[name]["definition"]) > 40


def test_json_ready_without_nan(metrics: dict) -> None:
    text = json.dumps(metrics, allow_nan=False)  # raises on NaN / inf
    assert "NaN" not in text


def test_lead_quality(metrics: dict) -> None:
    lq = metrics["lead_quality"]["by_period"]
    # Q3 cohort O1 O2 O4 O5 O8 (O10 created in Q3 has no history); O2 never got past contact
    assert lq[Q3] == {
        "created": 5,
        "reached_qualification": 4,
        "share": 0.8,
        "excluded_no_history": 1,
        "excluded_imported": 0,
        "by_lead_source": {
            "Inbound": {"created": 2, "reached_qualification": 2, "share": 1.0},  # O1 O4
            "Outbound": {"created": 1, "reached_qualification": 0, "share": 0.0},  # O2
            "Partner": {"created": 1, "reached_qualification": 1, "share": 1.0},  # O5
            "Referral": {"created": 1, "reached_qualification": 1, "share": 1.0},  # O8
        },
    }
    # Q4 cohort O6 O7 O9 O11 O12; O9 (contact) and O11 (lost from contact) did not qualify
    assert lq[Q4]["created"] == 5
    assert lq[Q4]["reached_qualification"] == 3
    assert lq[Q4]["share"] == 0.6
    assert lq[Q4]["by_lead_source"]["Event"] == {
        "created": 2,
        "reached_qualification": 0,
        "share": 0.0,
    }


def test_stage_conversion(metrics: dict) -> None:
    sc = metrics["stage_conversion"]["by_period"]

    def row(entered: int, advanced: int, still: int) -> dict:
        rate = None if entered == 0 else round(advanced / entered, 4)
        return {"entered": entered, "advanced": advanced, "still_open": still, "rate": rate}

    assert sc[Q3] == {
        "lead": row(5, 5, 0),  # O1 O2 O4 O5 O8 all reached contact
        "contact": row(5, 4, 0),  # O2 was lost from contact
        "qualification": row(4, 4, 0),  # O1 O4 O5 O8
        "discovery": row(2, 2, 0),  # O1 O3 (O3 skipped qualification)
        "solution": row(1, 0, 0),  # O4, lost from solution
        "proposal": row(3, 3, 0),  # O1 O3 O8 (O8 went back to solution, then negotiation)
        "negotiation": row(1, 1, 0),  # O1
    }
    assert sc[Q4] == {
        "lead": row(5, 5, 0),  # O6 O7 O9 O11 O12
        "contact": row(5, 3, 1),  # O9 still there, O11 lost
        "qualification": row(3, 2, 1),  # O6 O12 moved on, O7 still there
        "discovery": row(1, 1, 0),  # O12
        "solution": row(1, 1, 0),  # O8's regression stay
        "proposal": row(2, 1, 1),  # O5 moved on, O6 still there; O8's re-entry is not a first
        "negotiation": row(2, 1, 1),  # O5 won, O8 still there
    }


def test_win_rate(metrics: dict) -> None:
    wr = metrics["win_rate"]["by_period"]
    # Q3 closes: O1 won, O3 won, O2 lost; O2 never reached qualification
    assert wr[Q3] == {
        "won": 2,
        "lost": 1,
        "rate": 0.6667,
        "from_qualification": {"won": 2, "lost": 0, "rate": 1.0, "excluded_no_history": 0},
    }
    # Q4 closes: O5 O12 won, O4 O11 lost; O11 never reached qualification
    assert wr[Q4] == {
        "won": 2,
        "lost": 2,
        "rate": 0.5,
        "from_qualification": {"won": 2, "lost": 1, "rate": 0.6667, "excluded_no_history": 0},
    }


def test_cycle_length(metrics: dict) -> None:
    cl = metrics["cycle_length"]["by_period"]
    # Q3 won: O1 Jul 1 → Sep 1 = 62, O3 Jun 15 → Aug 10 = 56; lost: O2 Jul 3 → Jul 20 = 17
    assert cl[Q3] == {
        "won": {"count": 2, "median_days": 59.0},
        "lost": {"count": 1, "median_days": 17.0},
        "invalid": 0,
    }
    # Q4 won: O5 Sep 10 → Nov 2 = 53, O12 Oct 2 → Nov 15 = 44;
    # lost: O4 Aug 1 → Oct 15 = 75, O11 Oct 5 → Nov 10 = 36
    assert cl[Q4] == {
        "won": {"count": 2, "median_days": 48.5},
        "lost": {"count": 2, "median_days": 55.5},
        "invalid": 0,
    }


def test_deal_size(metrics: dict) -> None:
    ds = metrics["deal_size"]
    assert ds["segment_field"] == "segment"
    assert ds["by_period"][Q3] == {
        "count": 2,  # O1 10000, O3 20000
        "median": 15000.0,
        "mean": 15000.0,
        "missing_amount": 0,
        "currencies": ["USD"],
        "by_segment": {
            "ENT": {"count": 1, "median": 20000.0, "mean": 20000.0},
            "SMB": {"count": 1, "median": 10000.0, "mean": 10000.0},
        },
    }
    q4 = ds["by_period"][Q4]  # O5 30000; O12 won without an amount
    assert (q4["count"], q4["median"], q4["mean"], q4["missing_amount"]) == (1, 30000.0, 30000.0, 1)


def test_deal_size_segment_field_absent() -> None:
    snap = _snapshot()
    ctx = AuditContext.create(AS_OF)
    m = metrics_json(snap, _result(ctx), ctx, MetricsSection(segment_field="tier"))
    assert m["deal_size"]["segment_field"] is None
    assert m["deal_size"]["segment_reason"] == "segment field 'tier' is not a column of the data"
    assert "by_segment" not in m["deal_size"]["by_period"][Q3]


def test_pipeline_coverage(metrics: dict) -> None:
    pc = metrics["pipeline_coverage"]
    assert pc["targets_without_period"] == ["2027-Q1"]
    # Q3: nothing open closes in Q3; won 10000 + 20000
    assert pc["by_period"][Q3] == {
        "open_deals": 0,
        "missing_amount": 0,
        "open_amount": 0.0,
        "target": 50000.0,
        "coverage": 0.0,
        "won_amount": 30000.0,
        "remaining_target": 20000.0,
        "coverage_of_remaining": 0.0,
        "weighted_amount": 0.0,
        "missing_probability": 0,
        "weighted_coverage": 0.0,
    }
    # Q4: O6 40000×0.6, O8 50000×0.8, O10 7000×0.3, O9 (no amount); O7 closes in 2027
    assert pc["by_period"][Q4] == {
        "open_deals": 4,
        "missing_amount": 1,
        "open_amount": 97000.0,
        "target": 200000.0,
        "coverage": 0.485,  # 97000 / 200000
        "won_amount": 30000.0,  # O5 (O12 has no amount)
        "remaining_target": 170000.0,
        "coverage_of_remaining": 0.5706,  # 97000 / 170000
        "weighted_amount": 66100.0,  # 24000 + 40000 + 2100
        "missing_probability": 0,
        "weighted_coverage": 0.3305,  # 66100 / 200000
    }


def test_pipeline_coverage_without_target_is_null() -> None:
    snap = _snapshot()
    ctx = AuditContext.create(AS_OF)
    m = metrics_json(snap, _result(ctx), ctx, MetricsSection())
    q4 = m["pipeline_coverage"]["by_period"][Q4]
    assert q4["target"] is None and q4["coverage"] is None and q4["weighted_coverage"] is None
    assert q4["open_amount"] == 97000.0


def test_loss_reasons(metrics: dict) -> None:
    lr = metrics["loss_reasons"]["by_period"]
    assert lr[Q3] == {
        "lost": 1,
        "missing": 0,
        "missing_share": 0.0,
        "reasons": [{"reason": "Price", "count": 1, "share": 1.0}],
    }
    assert lr[Q4] == {  # O4 has no reason, O11 Competitor
        "lost": 2,
        "missing": 1,
        "missing_share": 0.5,
        "reasons": [{"reason": "Competitor", "count": 1, "share": 1.0}],
    }


def test_follow_up_discipline(metrics: dict) -> None:
    fu = metrics["follow_up_discipline"]
    # eligible: open and qualification..negotiation = O6 O7 O8 O10 (O9 is in contact)
    assert {k: fu[k] for k in ("eligible", "scheduled", "overdue", "undated", "no_next_step")} == {
        "eligible": 4,
        "scheduled": 1,  # O6 due today counts
        "overdue": 1,  # O7 due Nov 20
        "undated": 1,  # O8 has text, no date
        "no_next_step": 1,  # O10
    }
    assert fu["share"] == 0.25
    assert fu["overdue_share"] == 0.25
    assert fu["dated"] is True


def test_follow_up_without_due_dates_counts_recorded_steps() -> None:
    fields = frozenset(OPPORTUNITY_SCHEMA) - {"next_step_due"}
    snap = _snapshot(provided=fields)
    ctx = AuditContext.create(AS_OF)
    fu = metrics_json(snap, _result(ctx), ctx, MetricsSection())["follow_up_discipline"]
    # O6 O7 O8 have a next step text; O10 none
    assert (fu["dated"], fu["eligible"], fu["undated"], fu["no_next_step"]) == (False, 4, 3, 1)
    assert fu["share"] == 0.75
    assert fu["overdue"] is None


def test_stage_velocity(metrics: dict) -> None:
    sv = metrics["stage_velocity"]

    def row(days: list[int]) -> dict:
        if not days:
            return {"stays": 0, "median_days": None, "mean_days": None}
        s = sorted(days)
        mid = len(s) // 2
        med = s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
        return {"stays": len(s), "median_days": float(med), "mean_days": round(sum(s) / len(s), 1)}

    # stays that ended in Q3 (entry → next entry, calendar days)
    assert sv["by_period"][Q3] == {
        "lead": row([4, 5, 2, 2, 2]),  # O1 O2 O4 O5 O8 (O3's lead stay ended in June)
        "contact": row([5, 12, 11, 7, 8, 10]),  # O1 O2 O3 O4 O5 O8
        "qualification": row([10, 22, 14]),  # O1 O4 O8
        "discovery": row([12, 14]),  # O1 O3
        "solution": row([]),
        "proposal": row([14, 26]),  # O1 O3
        "negotiation": row([17]),  # O1
    }
    assert sv["by_period"][Q4] == {
        "lead": row([2, 2, 4, 1, 1]),  # O6 O7 O9 O11 O12
        "contact": row([5, 20, 35, 1]),  # O6 O7 O11 O12
        "qualification": row([15, 22, 6]),  # O5 O6 O12
        "discovery": row([36]),  # O12
        "solution": row([44, 19]),  # O4 O8
        "proposal": row([15, 16, 21]),  # O5, O8 twice
        "negotiation": row([13]),  # O5
    }
    # open deals in their current stage on Nov 26 (O10 has no history: not counted)
    assert sv["in_progress"] == {
        "lead": {"open": 0, "median_days": None},
        "contact": {"open": 1, "median_days": 21.0},  # O9 since Nov 5
        "qualification": {"open": 1, "median_days": 25.0},  # O7 since Nov 1
        "discovery": {"open": 0, "median_days": None},
        "solution": {"open": 0, "median_days": None},
        "proposal": {"open": 1, "median_days": 27.0},  # O6 since Oct 30
        "negotiation": {"open": 1, "median_days": 16.0},  # O8 since Nov 10
    }


def test_hygiene_score() -> None:
    """Worked by hand: two rules, E (error) and C (warning, close-out), over the 12 records.

    Open deals O6-O10 are in to-do scope for both; O4 and O11 are closed within the window
    (close-out scope for C only); O1 and O2 are older closed deals (process history).
    """
    import numpy as np

    from auditor.metrics.hygiene import combined
    from auditor.results import FLAGGED, NOT_APPLICABLE, NOT_EVALUABLE, PASSED
    from auditor.rule import Rule

    class E(Rule):
        """An error rule.

        Why it matters: test.

        How to fix: test.
        """

        code, name, severity = "XE01", "e", "error"

    class C(Rule):
        """A close-out warning rule.

        Why it matters: test.

        How to fix: test.
        """

        code, name, severity, closeout = "XC01", "c", "warning", True

    snap = _snapshot()
    ctx = AuditContext.create(AS_OF)
    ids = snap.opportunities["id"].tolist()
    checks = np.full((len(ids), 2), NOT_APPLICABLE, dtype=np.int8)
    for rid, state in {"O6": PASSED, "O7": FLAGGED, "O8": PASSED, "O9": NOT_EVALUABLE,
                       "O10": PASSED, "O1": FLAGGED}.items():
        checks[ids.index(rid), 0] = state
    for rid, state in {"O4": FLAGGED, "O11": PASSED, "O2": FLAGGED}.items():
        checks[ids.index(rid), 1] = state
    result = _result(ctx)
    result.rules = [E(), C()]
    result.checks = checks
    result.todo_scope = snap.opportunities["id"].isin(["O6", "O7", "O8", "O9", "O10"]).to_numpy()
    result.closeout_scope = snap.opportunities["id"].isin(["O4", "O11"]).to_numpy()
    typed = hygiene_scores(snap, result)
    hs = typed.to_dict()
    # checked weight: E on O6, O7, O8, O10 (4 × 1.0) + C on O4, O11 (2 × 0.5) = 5.0;
    # flagged weight: E on O7 (1.0) + C on O4 (0.5) = 1.5 → 100 × (1 − 1.5 / 5) = 70.0.
    # O1's E finding and O2's C finding are process history: not in the score.
    assert hs["org"] == 70.0
    assert hs["basis"] == {
        "checks": 6,
        "applicable_checks": 7,  # O9 could not be evaluated
        "deals_checked": 6,
        "text": "over 6 checks on 6 deals (86% of applicable checks evaluable)",
    }
    assert hs["flagged"] == 2  # O7, O4
    assert hs["by_owner"] == {"(none)": 100.0, "U1": 50.0, "U2": 66.7, "U3": 100.0}
    assert hs["by_team"] == {"(no team)": 100.0, "A": 57.1, "B": 100.0}
    assert hs["owners"]["U1"]["basis"] == "over 2 checks on 2 deals"
    assert combined([typed.owners["U1"], typed.owners["U2"]])[0] == 57.1  # = team A
    pc = metrics_json(snap, result, ctx, MetricsSection())["process_compliance"]
    assert pc["by_rule"] == {
        "XE01": {"checked": 1, "flagged": 1, "rate": 1.0},
        "XC01": {"checked": 1, "flagged": 1, "rate": 1.0},
    }


def test_without_stage_history_metrics_say_so() -> None:
    snap = _snapshot(history=False)
    ctx = AuditContext.create(AS_OF)
    m = metrics_json(snap, _result(ctx), ctx, MetricsSection())
    for name in ("lead_quality", "stage_conversion", "stage_velocity"):
        assert m[name]["available"] is False
        assert m[name]["reason"] == "not available: source has no stage history"
        assert "by_period" not in m[name]
    wr = m["win_rate"]
    assert wr["by_period"][Q3]["rate"] == 0.6667  # still computed from outcomes
    assert wr["by_period"][Q3]["from_qualification"] is None
    assert wr["from_qualification_reason"] == "not available: source has no stage history"


def test_missing_fields_make_metrics_unavailable() -> None:
    fields = frozenset(OPPORTUNITY_SCHEMA) - {"loss_reason", "amount", "probability"}
    snap = _snapshot(provided=fields)
    ctx = AuditContext.create(AS_OF)
    m = metrics_json(snap, _result(ctx), ctx, MetricsSection())
    assert m["loss_reasons"]["reason"] == "not available: source does not provide loss_reason"
    assert m["deal_size"]["available"] is False
    assert m["pipeline_coverage"]["reason"] == "not available: source does not provide amount"
    assert m["win_rate"]["available"] is True


def test_all_period_has_no_date_filter() -> None:
    snap = _snapshot()
    ctx = AuditContext.create(AS_OF)
    m = metrics_json(snap, _result(ctx), ctx, MetricsSection(periods=["all"]))
    assert m["periods"] == [{"key": "all", "label": "all", "start": None, "end": None}]
    assert m["win_rate"]["by_period"]["all"]["won"] == 4
    assert m["win_rate"]["by_period"]["all"]["lost"] == 3
    assert m["lead_quality"]["by_period"]["all"]["created"] == 11


def test_empty_snapshot_gives_nulls_not_nan() -> None:
    snap = Snapshot(
        make_opportunities(pd.DataFrame()),
        make_stage_history(),
        make_owners(),
        SnapshotMeta("empty", "test", provided_fields=frozenset(OPPORTUNITY_SCHEMA)),
    ).validate()
    ctx = AuditContext.create(AS_OF)
    m = metrics_json(snap, _result(ctx), ctx, MetricsSection(targets={Q4: 10.0}))
    json.dumps(m, allow_nan=False)
    assert m["win_rate"]["by_period"][Q4]["rate"] is None
    assert m["cycle_length"]["by_period"][Q4]["won"]["median_days"] is None
    assert m["hygiene_score"]["org"] is None
    assert m["pipeline_coverage"]["by_period"][Q4]["coverage"] == 0.0
    assert not any(isinstance(x, float) and math.isnan(x) for x in m["counts"].values())


def test_history_order_does_not_matter(metrics: dict) -> None:
    snap = _snapshot()
    shuffled = snap.stage_history.sample(frac=1.0, random_state=3).reset_index(drop=True)
    snap2 = Snapshot(snap.opportunities, shuffled, snap.owners, snap.meta).validate()
    ctx = AuditContext.create(AS_OF)
    cfg = MetricsSection(targets=TARGETS, segment_field="segment")
    assert metrics_json(snap2, _result(ctx), ctx, cfg) == metrics


def test_days_are_calendar_days_in_the_audit_time_zone() -> None:
    # 10:00 UTC is midnight of the *next* day at UTC+14, so every creation day moves one day
    # later while close dates (plain dates) stay: each cycle is one day shorter
    snap = _snapshot()
    ctx = AuditContext.create(AS_OF, "Pacific/Kiritimati")
    cl = metrics_json(snap, _result(ctx), ctx, MetricsSection())["cycle_length"]
    assert cl["by_period"][Q3]["won"] == {"count": 2, "median_days": 58.0}  # 61, 55
    assert cl["by_period"][Q3]["lost"] == {"count": 1, "median_days": 16.0}


def test_caveats_no_closed_lost_and_empty_periods() -> None:
    """#14: a 100 % win rate without any lost deal, and periods without data, are said."""
    snap = _snapshot()
    opp = snap.opportunities.copy()
    lost = opp["is_closed"].astype(bool) & ~opp["is_won"].astype(bool)
    opp = opp[~lost].reset_index(drop=True)
    hist = snap.stage_history[snap.stage_history["opportunity_id"].isin(opp["id"])]
    snap2 = Snapshot(opp, hist.reset_index(drop=True), snap.owners, snap.meta).validate()
    ctx = AuditContext.create(AS_OF)
    m = metrics_json(snap2, _result(ctx), ctx, MetricsSection())
    won = int(opp["is_won"].astype(bool).sum())
    caveat = (
        f"the data holds no closed-lost deal ({won:,} won): win rates of 100% mean lost deals "
        "are not recorded (or were deleted), not that every deal is won"
    )
    assert m["caveats"] == [caveat]
    assert m["win_rate"]["caveats"] == [caveat]
    # an audit two years later: both default periods are empty, the quarters with data named
    ctx = AuditContext.create("2028-11-26")
    m = metrics_json(snap, _result(ctx), ctx, MetricsSection())
    assert len(m["caveats"]) == 1
    assert m["caveats"][0].startswith(
        "no deal was created or closed in 2028-Q3, 2028-Q4: the metrics for those periods are "
        "empty; quarters holding data (deals created or closed): "
    )
    assert "2026-Q3" in m["caveats"][0]
