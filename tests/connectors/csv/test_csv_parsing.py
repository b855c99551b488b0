"""Cell parsers, one runner per case file (data/amount_cases.csv, data/date_cases.csv)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.csv_parsing import DateOrderUnknown, parse_amounts, parse_bools, parse_dates

DATA = Path(__file__).parent / "data"


def _cases(name: str) -> list[dict[str, str]]:
    frame = pd.read_csv(DATA / name, dtype=str, keep_default_na=False)
    return frame.to_dict("records")


def _one(text: str) -> pd.Series:
    return pd.Series([text], dtype="str")


@pytest.mark.parametrize("case", _cases("amount_cases.csv"), ids=lambda c: c["text"])
def test_amount_case(case: dict[str, str]) -> None:
    amount, currency, failed = parse_amounts(
        _one(case["text"]), decimal=case["decimal"], thousands=case["thousands"] or None
    )
    if case["amount"] == "FAIL":
        assert failed.tolist() == [True]
        assert amount.isna().tolist() == [True]
        return
    assert failed.tolist() == [False]
    assert amount.iloc[0] == pytest.approx(float(case["amount"]))
    expected_currency = case["currency"] or None
    got = currency.iloc[0]
    assert (None if pd.isna(got) else got) == expected_currency


@pytest.mark.parametrize(
    "case", _cases("date_cases.csv"), ids=lambda c: f"{c['text']}|{c['timezone']}"
)
def test_date_case(case: dict[str, str]) -> None:
    dayfirst = {"": None, "yes": True, "no": False}[case["dayfirst"]]
    aware = case["aware"] == "yes"
    out, failed = parse_dates(
        _one(case["text"]), fmt=None, dayfirst=dayfirst, tz=case["timezone"], aware=aware
    )
    if case["expected"] == "FAIL":
        assert failed.tolist() == [True]
        assert out.isna().tolist() == [True]
        return
    assert failed.tolist() == [False]
    assert str(out.dtype) == ("datetime64[us, UTC]" if aware else "datetime64[us]")
    assert out.iloc[0] == pd.Timestamp(case["expected"])


def test_missing_cells_are_not_failures() -> None:
    s = pd.Series([None, "2024-01-01"], dtype="str")
    out, failed = parse_dates(s, fmt=None, dayfirst=None, tz="UTC", aware=False)
    assert failed.tolist() == [False, False]
    assert out.isna().tolist() == [True, False]
    amount, _, failed = parse_amounts(s.iloc[:1], decimal=".", thousands=None)
    assert failed.tolist() == [False] and amount.isna().tolist() == [True]


def test_explicit_date_format() -> None:
    s = pd.Series(["2024|03|01", "2024-03-01"], dtype="str")
    out, failed = parse_dates(s, fmt="%Y|%m|%d", dayfirst=None, tz="UTC", aware=False)
    assert out.iloc[0] == pd.Timestamp("2024-03-01")
    assert failed.tolist() == [False, True]


def test_slash_date_without_order_is_refused() -> None:
    s = pd.Series(["2024-01-01", "03/04/2024"], dtype="str")
    with pytest.raises(DateOrderUnknown) as err:
        parse_dates(s, fmt=None, dayfirst=None, tz="UTC", aware=False)
    assert (err.value.index, err.value.value) == (1, "03/04/2024")


def test_booleans_case_insensitive() -> None:
    s = pd.Series(["TRUE", "no", "Y", "0", "t", "F", "maybe", None], dtype="str")
    out, failed = parse_bools(
        s, true_values=("true", "yes", "y", "1", "t"), false_values=("false", "no", "n", "0", "f")
    )
    assert out.tolist()[:6] == [True, False, True, False, True, False]
    assert out.isna().tolist() == [False] * 6 + [True, True]
    assert failed.tolist() == [False] * 6 + [True, False]


@settings(max_examples=200, deadline=None)
@given(
    cents=st.integers(min_value=-(10**12), max_value=10**12),
    european=st.booleans(),
    wrap=st.sampled_from(["{}", "$ {}", "{} EUR", "€{}", "({})"]),
)
def test_amount_round_trip(cents: int, european: bool, wrap: str) -> None:
    """Any amount written with grouping and either convention parses back exactly."""
    value = abs(cents) / 100
    text = f"{value:,.2f}"
    if european:
        text = text.replace(",", "_").replace(".", ",").replace("_", ".")
    if cents < 0 and wrap == "({})":
        wrap = "{}"  # "(-5)" is refused on purpose; write a plain minus instead
    negative = cents < 0 or wrap == "({})"
    if cents < 0:
        text = "-" + text
    amount, _, failed = parse_amounts(
        _one(wrap.format(text)), decimal="," if european else ".", thousands=None
    )
    assert failed.tolist() == [False]
    expected = -value if negative and value else value
    assert amount.iloc[0] == pytest.approx(expected, abs=1e-9)


def test_date_format_with_offset() -> None:
    s = pd.Series(["2024-03-01 10:00:00+0200", "2024-03-01"], dtype="str")
    out, failed = parse_dates(s, fmt="%Y-%m-%d %H:%M:%S%z", dayfirst=None, tz="UTC", aware=True)
    assert out.iloc[0] == pd.Timestamp("2024-03-01 08:00", tz="UTC")
    assert failed.tolist() == [False, True]
