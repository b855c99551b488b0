"""Metrics on the public Maven CRM dataset against an independent plain-pandas computation.

The Snapshot is built here with plain pandas (not the CSV connector) so the test checks the
metrics, not the mapping: Won → closed_won, Lost → closed_lost, Engaging → contact,
Prospecting → lead; engage_date → created_at, close_value → amount. No stage history.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from auditor.config import MetricsSection
from auditor.context import AuditContext
from auditor.metrics import compute_metrics
from auditor.results import VIOLATION_COLUMNS, AuditResult
from auditor.snapshot import (
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_owners,
    make_stage_history,
)


def metrics_json(*args: object) -> dict:
    """compute_metrics as metrics.json holds it (the values these tests check)."""
    return compute_metrics(*args).to_dict()  # type: ignore[arg-type]

_REL = Path("shared/datasets/maven-crm-sales-opportunities/sales_pipeline.csv")
_IN_REPO = Path(__file__).resolve().parents[1] / "data/maven/sales_pipeline.csv"
# ../shared next to the checkout (main at /work/main, worktrees one level deeper), else the
# copy vendored under tests/data/maven
CSV = next(
    (p / _REL for p in Path(__file__).resolve().parents if (p / _REL).exists()),
    _IN_REPO,
)

pytestmark = pytest.mark.skipif(
    not CSV.exists(), reason=f"Maven dataset not present at {CSV} (../shared is absent)"
)

STAGE = {
    "Won": "closed_won",
    "Lost": "closed_lost",
    "Engaging": "contact",
    "Prospecting": "lead",
}


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_csv(CSV, dtype=str)


@pytest.fixture(scope="module")
def metrics(raw: pd.DataFrame) -> dict:
    stage = raw["deal_stage"].map(STAGE)
    opp = pd.DataFrame(
        {
            "id": raw["opportunity_id"],
            "name": raw["account"].fillna("") + " " + raw["product"],
            "account_name": raw["account"],
            "owner_id": raw["sales_agent"],
            "stage": stage,
            "source_stage": raw["deal_stage"],
            "is_closed": stage.isin(["closed_won", "closed_lost"]),
            "is_won": stage == "closed_won",
            "amount": raw["close_value"].astype(float),
            "close_date": pd.to_datetime(raw["close_date"]),
            "created_at": pd.to_datetime(raw["engage_date"]).dt.tz_localize("UTC"),
        }
    )
    meta = SnapshotMeta(
        source="maven",
        source_type="test",
        provided_fields=frozenset(opp.columns),
        has_stage_history=False,
    )
    snap = Snapshot(make_opportunities(opp), make_stage_history(), make_owners(), meta).validate()
    ctx = AuditContext.create("2018-01-01")
    empty = pd.DataFrame({c: pd.Series(dtype="string[pyarrow]") for c in VIOLATION_COLUMNS})
    result = AuditResult(empty, empty, pd.DataFrame(), [], [], ctx)
    return metrics_json(snap, result, ctx, MetricsSection(periods=["all"]))


def test_win_rate_matches_plain_pandas(raw: pd.DataFrame, metrics: dict) -> None:
    won = int((raw["deal_stage"] == "Won").sum())
    lost = int((raw["deal_stage"] == "Lost").sum())
    got = metrics["win_rate"]["by_period"]["all"]
    assert (got["won"], got["lost"]) == (won, lost)
    assert got["rate"] == round(won / (won + lost), 4)
    assert got["from_qualification"] is None  # no stage history in this dataset


def test_median_won_cycle_matches_plain_pandas(raw: pd.DataFrame, metrics: dict) -> None:
    won = raw[raw["deal_stage"] == "Won"]
    days = (pd.to_datetime(won["close_date"]) - pd.to_datetime(won["engage_date"])).dt.days
    got = metrics["cycle_length"]["by_period"]["all"]["won"]
    assert got["count"] == int(days.notna().sum())
    assert got["median_days"] == float(days.median())


def test_history_metrics_are_unavailable(metrics: dict) -> None:
    assert metrics["stage_conversion"]["reason"] == "not available: source has no stage history"
    assert metrics["loss_reasons"]["reason"] == "not available: source does not provide loss_reason"
