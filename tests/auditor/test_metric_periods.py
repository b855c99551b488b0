"""Period bounds and labels relative to the audit day (calendar and fiscal quarters)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from auditor.config import MetricsSection, parse_config
from auditor.errors import ConfigError
from auditor.metrics.periods import NAT_DAY, day_number, resolve_period, resolve_periods

AS_OF = pd.Timestamp("2026-11-26")


@pytest.mark.parametrize(
    ("key", "fiscal", "label", "start", "end"),
    [
        ("current_quarter", 1, "2026-Q4", "2026-10-01", "2026-12-31"),
        ("last_quarter", 1, "2026-Q3", "2026-07-01", "2026-09-30"),
        ("current_month", 1, "2026-11", "2026-11-01", "2026-11-30"),
        ("last_month", 1, "2026-10", "2026-10-01", "2026-10-31"),
        ("year_to_date", 1, "2026-YTD", "2026-01-01", "2026-11-26"),
        # fiscal year starting in February: FY2027 runs Feb 2026 – Jan 2027
        ("current_quarter", 2, "FY2027-Q4", "2026-11-01", "2027-01-31"),
        ("last_quarter", 2, "FY2027-Q3", "2026-08-01", "2026-10-31"),
        ("year_to_date", 2, "FY2027-YTD", "2026-02-01", "2026-11-26"),
        # fiscal year starting in October (US federal): Nov 26 is in FY2027-Q1
        ("current_quarter", 10, "FY2027-Q1", "2026-10-01", "2026-12-31"),
        ("last_quarter", 10, "FY2026-Q4", "2026-07-01", "2026-09-30"),
    ],
)
def test_period_bounds(key: str, fiscal: int, label: str, start: str, end: str) -> None:
    p = resolve_period(key, AS_OF, fiscal)
    assert p.to_dict() == {"key": key, "label": label, "start": start, "end": end}


def test_last_quarter_across_new_year() -> None:
    p = resolve_period("last_quarter", pd.Timestamp("2027-01-03"))
    assert (p.label, p.to_dict()["start"], p.to_dict()["end"]) == (
        "2026-Q4",
        "2026-10-01",
        "2026-12-31",
    )


def test_contains_is_inclusive_and_skips_missing() -> None:
    p = resolve_period("current_quarter", AS_OF)
    days = np.array(
        [day_number(pd.Timestamp(d)) for d in ("2026-09-30", "2026-10-01", "2026-12-31")]
        + [day_number(pd.Timestamp("2027-01-01")), NAT_DAY]
    )
    assert p.contains(days).tolist() == [False, True, True, False, False]
    assert resolve_period("all", AS_OF).contains(days).all()


def test_duplicate_periods_are_dropped() -> None:
    ps = resolve_periods(["current_quarter", "current_quarter", "all"], AS_OF)
    assert [p.label for p in ps] == ["2026-Q4", "all"]


def test_fiscal_start_month_is_validated() -> None:
    assert MetricsSection(fiscal_year_start_month=4).fiscal_year_start_month == 4
    with pytest.raises(ConfigError, match="metrics.fiscal_year_start_month"):
        parse_config({"source": {"type": "demo"}, "metrics": {"fiscal_year_start_month": 13}})
