"""Violation rows by owner (the CSV attached to each owner's digest e-mail)."""

from __future__ import annotations

import pandas as pd

from reports.context import OwnerRows


def test_rows_by_owner_are_each_owners_rows_in_their_order() -> None:
    idx = [10, 11, 12, 13, 14, 15]
    v = pd.DataFrame(
        {"owner_id": pd.Series(["b", "a", None, "b", "c", "a"], dtype="str", index=idx),
         "opportunity_id": ["o1", "o2", "o3", "o4", "o5", "o6"]},
        index=idx,
    )
    split = OwnerRows(v)
    assert list(split) == ["a", "b", "c"]  # sorted ids; a deal without owner is in none
    assert split["a"]["opportunity_id"].tolist() == ["o2", "o6"]
    assert split["b"]["opportunity_id"].tolist() == ["o1", "o4"]
    assert split["b"].index.tolist() == [10, 13]
    assert split["c"]["opportunity_id"].tolist() == ["o5"]
    assert len(OwnerRows(v.iloc[:0])) == 0
