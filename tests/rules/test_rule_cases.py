"""One runner for every rule's data-file cases (tests/rules/cases/*.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auditor.engine import _coverage_masks, run_audit
from rules.testing import DEFAULT_AS_OF, build_config, build_snapshot

CASE_DIR = Path(__file__).parent / "cases"


def _load_cases() -> list:
    params = []
    for path in sorted(CASE_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for case in data["cases"]:
            params.append(pytest.param(data["rule"], case, id=f"{data['rule']}:{case['name']}"))
    return params


@pytest.mark.parametrize(("code", "case"), _load_cases())
def test_rule_case(code: str, case: dict) -> None:
    snap = build_snapshot(case)
    config = build_config(code, case)
    result = run_audit(snap, config, as_of=case.get("as_of", DEFAULT_AS_OF))
    assert [r.code for r in result.rules] == [code]
    expect = case["expect"]

    # the rule's judgement is every finding, to-do or process history; "process" lists the
    # ones on closed deals that are not to-dos
    v = pd.concat([result.violations, result.process], ignore_index=True)
    flagged = dict(zip(v["opportunity_id"].astype(str), v["message"].astype(str), strict=True))
    assert sorted(flagged) == sorted(expect.get("flagged", []))
    for oid, msg in expect.get("messages", {}).items():
        assert flagged[oid] == msg
    if "process" in expect:
        assert sorted(result.process["opportunity_id"].astype(str)) == sorted(expect["process"])

    rule = result.rules[0]
    blocked = np.zeros(len(snap.opportunities), dtype=bool)
    for _, mask in _coverage_masks(rule, snap, result.context):
        blocked |= True if mask is True else np.asarray(mask, dtype=bool)
    blocked &= np.asarray(rule.applies(snap, result.context), dtype=bool)
    not_eval = sorted(snap.opportunities.loc[blocked, "id"].astype(str))
    assert not_eval == sorted(expect.get("not_evaluable", []))

    cov = result.coverage.iloc[0]
    assert cov["not_evaluable"] == len(not_eval)
    assert cov["flagged"] == len(flagged)
    if "reasons" in expect:
        assert cov["reasons"] == expect["reasons"]
