"""The one NA → None converter (auditor.na), and no second one elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from auditor.na import frame_na_to_none, is_na, na_to_none

ROOT = Path(__file__).resolve().parents[2]


def test_every_missing_marker_becomes_none() -> None:
    for v in (None, pd.NA, pd.NaT, float("nan"), np.float32("nan"), np.float64("nan")):
        assert is_na(v) and na_to_none(v) is None, repr(v)
    for v in (0, 0.0, "", False, "NA", pd.Timestamp("2026-01-01")):
        assert not is_na(v), repr(v)
    assert type(na_to_none(np.int64(3))) is int and na_to_none(np.int64(3)) == 3
    assert type(na_to_none(np.bool_(True))) is bool
    assert na_to_none("x") == "x"


def test_frame_records_hold_none_for_every_missing_value() -> None:
    frame = pd.DataFrame({
        "s": pd.array(["a", None], dtype="string"),
        "f": [1.5, np.nan],
        "t": pd.to_datetime(["2026-01-01", None], utc=True),
        "c": pd.Categorical(["lead", None]),
    })
    rows = frame_na_to_none(frame).to_dict(orient="records")
    assert rows[1] == {"s": None, "f": None, "t": None, "c": None}
    assert rows[0]["s"] == "a" and rows[0]["f"] == 1.5


def test_no_other_module_tests_for_pandas_missing_markers() -> None:
    pattern = re.compile(r"is pd\.NA\b|is pd\.NaT\b")
    offenders = [
        str(p.relative_to(ROOT))
        for layer in ("auditor", "connectors", "rules", "reports")
        for p in (ROOT / layer).rglob("*.py")
        if p.name != "na.py" and pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
