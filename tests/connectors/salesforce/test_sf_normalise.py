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


def test_flatten_reads_relationships_at_any_depth_and_keeps_json_values() -> None:
    from connectors.salesforce.normalise import flatten_records

    records = [
        {"attributes": {"type": "Opportunity"}, "Id": "0061", "Amount": 50,
         "Account": {"attributes": {"type": "Account"}, "Name": "Acme",
                     "Owner": {"Name": "Ann Lee"}}},
        {"attributes": {"type": "Opportunity"}, "Id": "0062", "Amount": None, "Account": None},
    ]
    frame = flatten_records(records, ["Id", "Amount", "Account.Name", "Account.Owner.Name"])
    assert frame.to_dict("list") == {
        "Id": ["0061", "0062"],
        "Amount": [50, None],  # an integral number stays 50 (json_normalize made it 50.0)
        "Account.Name": ["Acme", None],
        "Account.Owner.Name": ["Ann Lee", None],
    }
    assert all(d.kind == "O" for d in frame.dtypes)


def test_isin_is_a_hash_lookup_with_missing_values_never_matching() -> None:
    import pandas as pd

    from connectors.salesforce.normalise import isin

    s = pd.Series(["a", None, "b", "c"], dtype="string[pyarrow]", index=[5, 6, 7, 8])
    got = isin(s, pd.Series(["c", None, "a"], dtype=object))
    assert got.tolist() == [True, False, False, True]
    assert got.index.tolist() == [5, 6, 7, 8]
