"""A 1,000,000-opportunity AuditRun built cheaply (no demo generator, no catalogue rules).

Three vectorized stub rules flag about a million findings over 20,000 owners, 400 managers
and 150 teams in several currencies: what the size caps must hold against. Used by the e-mail
size tests and the key-name scan. ``n`` builds the same organisation (owners, managers, teams,
currencies, warnings) with fewer opportunities.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from auditor.config import parse_config
from auditor.engine import run_audit
from auditor.metrics import compute_metrics
from auditor.results import AuditRun, HistoryDiff
from auditor.snapshot import (
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_owners,
    make_stage_history,
)
from tests.reports.reports_fixture import RULES

N = 1_000_000
OWNERS = 20_000
MANAGERS = 400
TEAMS = 150
CURRENCIES = np.array(["USD", "EUR", "GBP", "CHF", "JPY"], dtype=object)
STAGES = np.array(["lead", "discovery", "proposal", "negotiation", "closed_won"], dtype=object)


def big_snapshot(n: int = N) -> Snapshot:
    rng = np.random.default_rng(7)
    oid = np.array([f"U{i:06d}" for i in range(OWNERS)], dtype=object)
    mgr = np.where(np.arange(OWNERS) < MANAGERS, None, oid[np.arange(OWNERS) % MANAGERS])
    owners = make_owners(
        pd.DataFrame(
            {
                "id": oid,
                "name": [f"Representative Ñame {i:05d}" for i in range(OWNERS)],
                "email": [f"rep{i}@example.com" for i in range(OWNERS)],
                "active": True,
                "manager_id": mgr,
                "team": [f"Regional team {i % TEAMS:03d} — long name" for i in range(OWNERS)],
            }
        )
    )
    ids = pd.Series(np.arange(n)).map("006{:012d}".format)
    stage = STAGES[rng.integers(0, len(STAGES), n)]
    closed = stage == "closed_won"
    opp = make_opportunities(
        pd.DataFrame(
            {
                "id": ids,
                "source": "big",
                "url": "https://big.my.salesforce.com/" + ids,
                "name": "Déal " + ids + " – Enterprise expansion with a long name",
                "account_name": "Account " + pd.Series(rng.integers(0, 90_000, n)).astype(str),
                "owner_id": oid[rng.integers(0, OWNERS, n)],
                "stage": stage,
                "is_closed": closed,
                "is_won": closed,
                "amount": rng.integers(1, 500, n) * 1000.0,
                "currency": CURRENCIES[rng.integers(0, len(CURRENCIES), n)],
                "next_step": np.where(rng.random(n) < 0.3, "Call", None),
                "created_at": pd.Timestamp("2026-01-01", tz="UTC"),
            }
        )
    )
    meta = SnapshotMeta(
        source="big",
        source_type="salesforce",
        pulled_at=datetime(2026, 11, 20, 6, 0, tzinfo=UTC),
        provided_fields=frozenset(c for c in opp.columns if c != "next_step_due"),
        loaded_rows=n,
        unmapped_stages={f"Custom stage {i}": i for i in range(1, 300)},
    )
    meta.warnings = [f"warning number {i} about the data" for i in range(200)]
    return Snapshot(opp, make_stage_history(), owners, meta=meta).validate()


def big_run(tmp_path: Path, n: int = N) -> AuditRun:
    cfg = parse_config(
        {"source": {"type": "demo"}, "audit": {"as_of": "2026-11-20"}},
        origin="<big>",
        base_dir=tmp_path,
    )
    snap = big_snapshot(n)
    result = run_audit(snap, cfg, rules=RULES)
    metrics = compute_metrics(snap, result, result.context, cfg.metrics)
    v = result.violations
    items = [
        {k: str(r[k]) for k in ("rule_code", "rule_name", "opportunity_id", "fingerprint")}
        for r in v.head(5000).to_dict(orient="records")
    ]
    history = HistoryDiff.from_dict(
        {
            "previous_run": {"id": 1, "finished_at": "2026-11-19T06:00:00+00:00", "score": 40.0},
            "new": 5000,
            "resolved": 5000,
            "persisting": len(v) - 5000,
            "new_items": items,
            "resolved_items": items,
            "trend": [
                {
                    "run_id": i,
                    "finished_at": f"2026-11-{i:02d}T06:00:00+00:00",
                    "score": 40.0,
                    "violations": len(v),
                }
                for i in range(1, 20)
            ],
        }
    )
    return AuditRun(
        cfg,
        snap,
        result,
        metrics,
        started_at=datetime(2026, 11, 20, 6, 0, tzinfo=UTC),
        timings={"pull": 1.0},
        history=history,
    )
