"""Meta-tests over the whole catalogue: documentation, parameters, cases, examples, no loops."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from auditor.engine import run_audit
from auditor.plugins import rule_classes as all_rules
from auditor.rule import GROUPS, SEVERITIES, STAGE_HISTORY, Param
from auditor.snapshot import OPPORTUNITY_SCHEMA
from rules.catalogue import ALL_RULES
from rules.testing import build_config, build_snapshot

ROOT = Path(__file__).resolve().parents[2]
CASE_DIR = Path(__file__).parent / "cases"
CATALOGUE = [
    "QL01", "QL02", "ST01", "ST02", "ST03", "ST04", "FU01", "FU02", "FU03", "CD01", "CD02",
    "CD03", "CL01", "CL02", "CL03", "DQ01", "DQ02", "DQ03", "DQ04",
]  # fmt: skip


def test_catalogue_order_and_unique_codes_and_names() -> None:
    assert [r.code for r in ALL_RULES] == CATALOGUE
    registered = all_rules()
    assert len({r.code for r in registered}) == len(registered)
    assert len({r.name for r in registered}) == len(registered)


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_rule_is_documented_and_declared(rule) -> None:  # noqa: ANN001
    assert re.fullmatch(r"[A-Z]{2}\d{2}", rule.code)
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.name)
    assert rule.code[:2] in GROUPS and rule.group() == GROUPS[rule.code[:2]]
    assert rule.severity in SEVERITIES
    assert len(rule.summary()) > 20 and rule.summary().endswith(".")
    assert len(rule.why()) > 40, f"{rule.code}: docstring needs 'Why it matters:'"
    assert len(rule.fix()) > 20, f"{rule.code}: docstring needs 'How to fix:'"
    assert len(rule.details()) > 40, f"{rule.code}: docstring needs the exact semantics"
    assert isinstance(rule.requires, tuple)
    for col in rule.requires:
        assert col in OPPORTUNITY_SCHEMA or col == STAGE_HISTORY
    assert isinstance(rule.params, dict)
    for pname, p in rule.params.items():
        assert isinstance(p, Param) and p.help
        # every default is valid for its own declared type
        assert p.coerce(p.default, f"rules.{rule.code}.{pname}") == p.default
    doc = rule.describe()
    assert doc["code"] == rule.code and doc["example"] == rule.example


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_rule_has_case_file_with_pass_fail_edge(rule) -> None:  # noqa: ANN001
    path = CASE_DIR / f"{rule.code}.json"
    assert path.exists(), f"missing {path}"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["rule"] == rule.code
    kinds = {c["kind"] for c in data["cases"]}
    assert {"pass", "fail", "edge"} <= kinds
    names = [c["name"] for c in data["cases"]]
    assert len(names) == len(set(names))


def _example_case(rule) -> dict:  # noqa: ANN001
    ex = rule.example
    rec = ex["record"]
    hist = {rec["id"]: ex["history"]} if "history" in ex else {}
    return {
        "name": f"{rule.code} example",
        "opportunities": [rec, *ex.get("others", [])],
        "history": hist,
        "owners": ex.get("owners", []),
    }


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda r: r.code)
def test_documented_example_is_flagged_with_its_message(rule) -> None:  # noqa: ANN001
    assert rule.example, f"{rule.code} has no example"
    case = _example_case(rule)
    result = run_audit(build_snapshot(case), build_config(rule.code, case), rule.example["as_of"])
    v = result.violations.set_index("opportunity_id")
    rid = rule.example["record"]["id"]
    assert rid in v.index
    assert v.loc[rid, "message"] == rule.example["message"]


_LOOP = re.compile(
    r"\.iterrows\(|\.itertuples\(|\.apply\([^)]*axis\s*=\s*(1|['\"]columns['\"])"
    r"|for\s+\w+(\s*,\s*\w+)*\s+in\s+[\w.]*opportunities\b"
)


def test_no_per_row_python_loops_in_rules() -> None:
    files = sorted((ROOT / "rules").glob("*.py"))
    assert len(files) >= 8
    offenders = [
        f"{path.name}:{i}: {line.strip()}"
        for path in files
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _LOOP.search(line)
    ]
    assert offenders == []


def test_loop_scan_catches_loops() -> None:
    for bad in (
        "for _, row in opp.iterrows():",
        "opp.itertuples()",
        "df.apply(f, axis=1)",
        "df.apply(lambda r: r, axis='columns')",
        "for row in snap.opportunities:",
    ):
        assert _LOOP.search(bad), bad
    assert not _LOOP.search("opp['x'].map(limits)")
