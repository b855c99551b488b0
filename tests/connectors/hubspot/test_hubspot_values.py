"""String property values → Snapshot dtypes (vectorized converters)."""

from __future__ import annotations

import pandas as pd

from connectors.hubspot.values import (
    parse_booleans,
    parse_dates,
    parse_forecast,
    parse_numbers,
    parse_timestamps,
)


def s(*values) -> pd.Series:
    return pd.Series(list(values), dtype=object)


def test_timestamps_iso_epoch_and_naive() -> None:
    out, bad = parse_timestamps(
        s("2024-01-02T03:04:05.678Z", "1704164645678", "2024-01-02 03:04", None, "", "soon"),
        "America/New_York")
    t = pd.Timestamp
    assert out.tolist()[:3] == [t("2024-01-02T03:04:05.678Z"), t("2024-01-02T03:04:05.678Z"),
                                t("2024-01-02T08:04:00Z")]
    assert out.isna().tolist() == [False, False, False, True, True, True]
    assert str(out.dtype) == "datetime64[us, UTC]"
    assert bad.tolist() == [False, False, False, False, False, True]


def test_dates_in_the_portal_time_zone() -> None:
    # picked as March 31st in New York, stored as the next day in UTC
    out, bad = parse_dates(s("2024-04-01T03:59:59.999Z", "2024-04-01T04:00:00Z", "2024-03-31",
                             None), "America/New_York")
    assert out.tolist()[:3] == [pd.Timestamp("2024-03-31"), pd.Timestamp("2024-04-01"),
                                pd.Timestamp("2024-03-31")]
    assert out.isna().tolist() == [False, False, False, True]
    assert not bad.any()
    out, _ = parse_dates(s("2024-04-01T03:59:59.999Z"), "UTC")
    assert out.tolist() == [pd.Timestamp("2024-04-01")]


def test_numbers_booleans_forecast() -> None:
    n, bad = parse_numbers(s("1000", "25,000.50", "0.2", "", None, "n/a"))
    assert n.tolist() == [1000.0, 25000.5, 0.2, pd.NA, pd.NA, pd.NA]
    assert bad.tolist() == [False, False, False, False, False, True]
    b, bad = parse_booleans(s("true", "FALSE", "Yes", None, "maybe"))
    assert b.tolist() == [True, False, True, pd.NA, pd.NA]
    assert bad.tolist() == [False, False, False, False, True]
    f, bad = parse_forecast(s("COMMIT", "Best case", "OMIT", "BEST_CASE", "hot"))
    assert f.tolist() == ["commit", "best_case", "omitted", "best_case", pd.NA]
    assert bad.tolist() == [False, False, False, False, True]
