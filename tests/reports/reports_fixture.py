"""A fixed, hand-made audit run for the report tests.

Built here (not with the demo generator, whose rules and data may change) from a tiny snapshot,
three stub rules with fixed documentation, fixed typed metrics, a fixed history and fixed
timings, so the golden files only change when the reports do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from auditor.config import parse_config
from auditor.engine import run_audit
from auditor.metric_types import (
    Counts,
    GroupScore,
    HygieneScore,
    Metric,
    Metrics,
    OwnerRate,
    OwnerScore,
    PeriodBounds,
    ProcessCompliance,
    Rate,
    RuleRate,
    ScoreBasis,
)
from auditor.results import AuditRun, HistoryDiff
from auditor.rule import Rule
from auditor.snapshot import (
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_owners,
    make_stage_history,
)

AS_OF = "2026-11-20"
EVIL_NAME = "<script>alert(1)</script>"


class NoNextStep(Rule):
    """Open deal with no next step.

    Why it matters: nobody is moving the deal.

    How to fix: agree the next step with the buyer and record it.
    """

    code = "TS01"
    name = "test-no-next-step"
    severity = "error"
    requires = ("next_step",)

    def evaluate(self, snap, ctx):  # noqa: ANN001, ANN201
        opp = snap.opportunities
        return (~opp["is_closed"].fillna(False)) & opp["next_step"].isna()

    def message(self, snap, ctx, rows):  # noqa: ANN001, ANN201
        stage = snap.opportunities.loc[rows, "stage"].astype(str)
        return "open in " + stage + " with no next step"


class BigDeal(Rule):
    """Large open deal that needs a review.

    Why it matters: large deals move the forecast.

    How to fix: review the deal with your manager.
    """

    code = "TS02"
    name = "test-big-deal"
    severity = "warning"
    requires = ("amount",)

    def evaluate(self, snap, ctx):  # noqa: ANN001, ANN201
        opp = snap.opportunities
        return (~opp["is_closed"].fillna(False)) & (opp["amount"].fillna(0) >= 40000)

    def message(self, snap, ctx, rows):  # noqa: ANN001, ANN201
        amount = snap.opportunities.loc[rows, "amount"].astype(int).astype(str)
        return "amount " + amount + " needs a review"


class NeedsDueDate(Rule):
    """Deal with a past next-step date.

    Why it matters: an overdue step is a stalled deal.

    How to fix: do the step or move its date.
    """

    code = "TS03"
    name = "test-needs-due-date"
    severity = "info"
    requires = ("next_step_due",)

    def evaluate(self, snap, ctx):  # noqa: ANN001, ANN201
        return snap.opportunities["next_step_due"] < ctx.as_of

    def message(self, snap, ctx, rows):  # noqa: ANN001, ANN201
        return pd.Series("next step overdue", index=rows)


RULES = [NoNextStep(), BigDeal(), NeedsDueDate()]

OWNERS = [
    # id, name, email, active, manager_id, team
    ("M1", "Maria Manager", "maria@example.com", True, None, "Enterprise"),
    ("O1", "Alice Owner", "alice@example.com", True, "M1", "Enterprise"),
    ("O2", "Bob Owner", "bob@example.com", True, "M1", "Enterprise"),
    ("O3", "Carol NoEmail", None, True, None, "SMB"),
]
DEALS = [
    # id, name, owner, stage, closed, won, amount, next_step
    ("D1", "Acme – Renewal", "O1", "proposal", False, False, 50000.0, None),
    ("D2", EVIL_NAME, "O2", "discovery", False, False, 12000.0, None),
    ("D3", "Globex | Expansion *big*", "O1", "negotiation", False, False, 80000.0, "Call CFO"),
    ("D4", "Initech", "O2", "closed_won", True, True, 30000.0, None),
    ("D5", "Umbrella", "O3", "proposal", False, False, 20000.0, None),
    ("D6", "Hooli", "O1", "lead", False, False, 5000.0, "Send deck"),
]


def make_snapshot(owner_names: dict[str, str] | None = None) -> Snapshot:
    owners = [list(o) for o in OWNERS]
    for o in owners:
        if owner_names and o[0] in owner_names:
            o[1] = owner_names[o[0]]
    own = make_owners(
        pd.DataFrame(owners, columns=["id", "name", "email", "active", "manager_id", "team"])
    )
    rows = []
    for did, name, owner, stage, closed, won, amount, step in DEALS:
        url = "javascript:alert(1)" if did == "D2" else f"https://crm.example.com/opp/{did}"
        rows.append(
            {
                "id": did,
                "source": "fixture",
                "url": url,
                "name": name,
                "account_name": f"{name.split(' ')[0]} Inc",
                "owner_id": owner,
                "stage": stage,
                "is_closed": closed,
                "is_won": won,
                "amount": amount,
                "currency": "EUR",
                "next_step": step,
                "created_at": pd.Timestamp("2026-09-01", tz="UTC"),
            }
        )
    opp = make_opportunities(pd.DataFrame(rows))
    provided = frozenset(c for c in opp.columns if c != "next_step_due")
    meta = SnapshotMeta(
        source="fixture",
        source_type="csv",
        pulled_at=datetime(2026, 11, 20, 6, 0, tzinfo=UTC),
        provided_fields=provided,
        loaded_rows=7,
        unmapped_stages={"Zombie": 1},
    )
    from auditor.snapshot import RejectedRow

    meta.rejected = [RejectedRow("opportunities.csv row 8", "stage 'Zombie' is not mapped")]
    return Snapshot(opp, make_stage_history(), own, meta=meta).validate()


def make_metrics() -> Metrics:
    """Hand-made typed metrics (auditor.metric_types), fresh per run: every field the reports
    read by name, and values of the shapes the metrics module produces."""
    def owner(score, checked, flagged, checks, applicable, deals, basis, name, team):  # noqa: ANN001, ANN202
        return OwnerScore(score, deals + 1, 1, checks, applicable, deals, checked, flagged, basis,
                          name=name, team=team)

    def gone(name: str, definition: str) -> Metric:
        return Metric.unavailable(name, definition, "not available: source has no stage history")

    return Metrics(
        as_of=AS_OF,
        timezone="UTC",
        periods=[
            PeriodBounds("last_quarter", "2026-Q3", "2026-07-01", "2026-09-30"),
            PeriodBounds("current_quarter", "2026-Q4", "2026-10-01", "2026-12-31"),
        ],
        counts=Counts(opportunities=6, open=5, closed=1, won=1, lost=0, open_amount=167000.0,
                      with_stage_history=0),
        lead_quality=gone("lead_quality", "Share of opportunities that reached qualification."),
        stage_conversion=Metric(
            "stage_conversion",
            "Share of opportunities that entered a stage and went on.",
            values={"by_stage": {"lead": 0.8, "qualification": 0.6, "proposal": None}},
        ),
        win_rate=Metric(
            "win_rate",
            "Won ÷ (won + lost) closed in the period.",
            values={"by_period": {
                "2026-Q3": {"won": 3, "lost": 1, "rate": 0.75},
                "2026-Q4": {"won": 1, "lost": 1, "rate": 0.5},
            }},
        ),
        cycle_length=Metric(
            "cycle_length",
            "Median days from creation to close.",
            values={
                "median_days_won": 42,
                "median_days_lost": None,
                "rows": [{"segment": "SMB", "median_days": 30}, {"segment": "Enterprise"}],
            },
        ),
        deal_size=Metric.unavailable(
            "deal_size", "Median amount of won deals.",
            "not available: source does not provide amount",
        ),
        pipeline_coverage=Metric.unavailable(
            "pipeline_coverage",
            "Open amount closing in the period ÷ target.",
            "no targets configured (metrics.targets)",
        ),
        loss_reasons=Metric.unavailable(
            "loss_reasons", "Loss reasons of lost deals.",
            "not available: source does not provide loss_reason",
        ),
        follow_up_discipline=Metric(
            "follow_up_discipline",
            "Share of open deals with a next step.",
            values={"as_of": AS_OF, "dated": False, "eligible": 4, "share": 0.5},
        ),
        stage_velocity=Metric(
            "stage_velocity",
            "Median days spent in each open stage.",
            values={"by_period": {
                "2026-Q3": {
                    "lead": {"stays": 4, "median_days": 7.0, "mean_days": 6.5},
                    "proposal": {"stays": 2, "median_days": 21.0, "mean_days": 24.0},
                    "negotiation": {"stays": 1, "median_days": 30.0, "mean_days": 30.0},
                }
            }},
        ),
        hygiene_score=HygieneScore(
            definition="100 × (1 − mean penalty per opportunity).",
            checks_evaluated_share=0.9231,
            basis=ScoreBasis(12, 13, 6,
                             "over 12 checks on 6 deals (92% of applicable checks evaluable)"),
            weights={"error": 1.0, "warning": 0.5, "info": 0.1},
            org=58.3,
            opportunities=6,
            flagged=3,
            teams={
                "Enterprise": GroupScore(62.5, 5, 2, 10, 11, 5, 4.0, 1.5,
                                         "over 10 checks on 5 deals"),
                "SMB": GroupScore(0.0, 1, 1, 2, 2, 1, 1.0, 1.0, "over 2 checks on 1 deal"),
            },
            # the per-owner weights roll-ups combine (checked / flagged weight of the checks)
            owners={
                "O1": owner(50.0, 2.0, 1.0, 2, 2, 2, "over 2 checks on 2 deals",
                            "Alice Owner", "Enterprise"),
                "O2": owner(50.0, 2.0, 1.0, 2, 3, 2,
                            "over 2 checks on 2 deals (67% of applicable checks evaluable)",
                            "Bob Owner", "Enterprise"),
                "O3": owner(0.0, 1.0, 1.0, 1, 1, 1, "over 1 check on 1 deal",
                            "Carol NoEmail", "SMB"),
            },
        ),
        process_compliance=ProcessCompliance(
            "Process history: share of checks on closed deals that found a violation.",
            window_days=30,
            findings=1,
            checks=3,
            rate=0.3333,
            by_rule={"TS02": Rate(1, 0, 0.0), "TS03": Rate(2, 1, 0.5)},
            by_owner={"O2": Rate(3, 1, 0.3333)},
            by_team={"Enterprise": Rate(3, 1, 0.3333)},
            by_close_quarter={"2026-Q4": Rate(3, 1, 0.3333)},
            by_rule_list=[RuleRate("TS02", "test-big-deal", 1, 0, 0.0),
                          RuleRate("TS03", "test-needs-due-date", 2, 1, 0.5)],
            by_owner_list=[OwnerRate("O2", "Bob Owner", 3, 1, 0.3333)],
        ),
    )


HISTORY = {
    "previous_run": {"id": 7, "finished_at": "2026-11-19T06:01:00+00:00", "score": 55.0},
    "new": 1,
    "resolved": 2,
    "persisting": 4,
    "new_items": [],
    "resolved_items": [
        {
            "rule_code": "TS01",
            "rule_name": "test-no-next-step",
            "opportunity_id": "D9",
            "opportunity_name": "Old Deal",
            "url": "https://crm.example.com/opp/D9",
            "owner_id": "O1",
        }
    ],
    "trend": [
        {"run_id": 6, "finished_at": "2026-11-18T06:00:00+00:00", "score": 50.0, "violations": 9},
        {"run_id": 7, "finished_at": "2026-11-19T06:01:00+00:00", "score": 55.0, "violations": 8},
    ],
}


def make_run(
    tmp_path: Path,
    config: dict | None = None,
    history: dict | None = None,
    owner_names: dict[str, str] | None = None,
) -> AuditRun:
    # digests on (the default) unless a test's config turns them off
    config = dict(config or {})
    data = {
        "source": {"type": "demo"},
        "audit": {"as_of": AS_OF},
        **config,
        "report": {"digests": True, **config.get("report", {})},
    }
    cfg = parse_config(data, origin="<test>", base_dir=tmp_path)
    snap = make_snapshot(owner_names)
    result = run_audit(snap, cfg, rules=RULES)
    if history is not None and history.get("new_items") == []:
        first = result.violations.iloc[0]
        history = {
            **history,
            "new_items": [
                {
                    k: str(first[k])
                    for k in (
                        "rule_code",
                        "rule_name",
                        "opportunity_id",
                        "opportunity_name",
                        "fingerprint",
                    )
                }
            ],
        }
    run = AuditRun(
        cfg,
        snap,
        result,
        make_metrics(),
        started_at=datetime(2026, 11, 20, 6, 0, tzinfo=UTC),
        timings={"pull": 0.5, "rules": 0.25, "metrics": 0.125},
        history=HistoryDiff.from_dict(history) if history is not None else None,
    )
    run.finished_at = datetime(2026, 11, 20, 6, 0, 1, tzinfo=UTC)
    return run
