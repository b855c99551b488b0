"""A fixed, hand-made audit run for the report tests.

Built here (not with the demo generator, whose rules and data may change) from a tiny snapshot,
three stub rules with fixed documentation, fixed metrics, a fixed history and fixed timings, so
the golden files only change when the reports do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from auditor.config import parse_config
from auditor.engine import run_audit
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


METRICS = {
    "as_of": AS_OF,
    "periods": [
        {"key": "last_quarter", "label": "2026-Q3", "start": "2026-07-01", "end": "2026-09-30"},
        {"key": "current_quarter", "label": "2026-Q4", "start": "2026-10-01", "end": "2026-12-31"},
    ],
    "counts": {"opportunities": 6, "open": 5, "open_amount": 167000.0},
    "hygiene_score": {
        "name": "hygiene_score",
        "definition": "100 × (1 − mean penalty per opportunity).",
        "org": 58.3,
        "basis": {"text": "over 12 checks on 6 deals (92% of applicable checks evaluable)"},
        "by_team": {"Enterprise": 62.5, "SMB": 0.0},
        "by_owner": {"O1": 50.0, "O2": 50.0, "O3": 0.0},
        # the per-owner weights roll-ups combine (checked / flagged weight of the checks)
        "owners": {
            "O1": {"score": 50.0, "checked_weight": 2.0, "flagged_weight": 1.0, "checks": 2,
                   "applicable_checks": 2, "deals_checked": 2, "basis": "over 2 checks on 2 deals"},
            "O2": {"score": 50.0, "checked_weight": 2.0, "flagged_weight": 1.0, "checks": 2,
                   "applicable_checks": 3, "deals_checked": 2,
                   "basis": "over 2 checks on 2 deals (67% of applicable checks evaluable)"},
            "O3": {"score": 0.0, "checked_weight": 1.0, "flagged_weight": 1.0, "checks": 1,
                   "applicable_checks": 1, "deals_checked": 1, "basis": "over 1 check on 1 deal"},
        },
    },
    "win_rate": {
        "name": "win_rate",
        "definition": "Won ÷ (won + lost) closed in the period.",
        "by_period": {
            "2026-Q3": {"won": 3, "lost": 1, "rate": 0.75},
            "2026-Q4": {"won": 1, "lost": 1, "rate": 0.5},
        },
    },
    "stage_conversion": {
        "name": "stage_conversion",
        "definition": "Share of opportunities that entered a stage and went on.",
        "by_stage": {"lead": 0.8, "qualification": 0.6, "proposal": None},
    },
    "stage_velocity": {
        "name": "stage_velocity",
        "definition": "Median days spent in each open stage.",
        "available": True,
        "reason": None,
        "by_period": {
            "2026-Q3": {
                "lead": {"stays": 4, "median_days": 7.0, "mean_days": 6.5},
                "proposal": {"stays": 2, "median_days": 21.0, "mean_days": 24.0},
                "negotiation": {"stays": 1, "median_days": 30.0, "mean_days": 30.0},
            }
        },
    },
    "pipeline_coverage": {
        "name": "pipeline_coverage",
        "definition": "Open amount closing in the period ÷ target.",
        "available": False,
        "reason": "no targets configured (metrics.targets)",
    },
    "sales_cycle": {
        "name": "sales_cycle",
        "definition": "Median days from creation to close.",
        "median_days_won": 42,
        "median_days_lost": None,
        "rows": [{"segment": "SMB", "median_days": 30}, {"segment": "Enterprise"}],
    },
}

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
    # digests on: these tests look at them (the default is off for large orgs)
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
        METRICS,
        started_at=datetime(2026, 11, 20, 6, 0, tzinfo=UTC),
        timings={"pull": 0.5, "rules": 0.25, "metrics": 0.125},
        history=HistoryDiff.from_dict(history) if history is not None else None,
    )
    run.finished_at = datetime(2026, 11, 20, 6, 0, 1, tzinfo=UTC)
    return run
