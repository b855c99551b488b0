"""Value parsing shared by REST, Bulk and export paths: one runner over recorded cases."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from connectors.salesforce.normalise import _Notes, parse_column
from tests.connectors.salesforce.fake_org import DATA

CASES = json.loads((DATA / "parse_cases.json").read_text())


def _plain(v: object) -> object:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat() if v.tzinfo else v.date().isoformat()
    return v


@pytest.mark.parametrize("case", CASES, ids=[f"{c['kind']}-{i}" for i, c in enumerate(CASES)])
def test_parse_column(case: dict) -> None:
    raw = pd.Series(case["raw"], dtype=object)
    notes = _Notes()
    out = parse_column(
        raw, case["kind"], tz=case.get("tz", "UTC"), notes=notes, where="W", sf_field="F"
    )
    assert [_plain(v) for v in out] == case["expected"]
    unreadable = sum(
        1
        for r, e in zip(case["raw"], case["expected"], strict=True)
        if e is None and r not in (None, "", " ") and case["kind"] not in ("id", "text")
    )
    assert len(notes.warnings) == (1 if unreadable else 0)
