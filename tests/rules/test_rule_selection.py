"""Rule selection, severity overrides and parameter config errors (engine duties)."""

from __future__ import annotations

import pytest

from auditor.config import parse_config
from auditor.engine import run_audit, select_rules
from auditor.errors import ConfigError
from rules.catalogue import ALL_RULES
from rules.testing import build_snapshot

ALL = [r.code for r in ALL_RULES]


def _codes(rules: dict) -> list[str]:
    cfg = parse_config({"source": {"type": "demo"}, "rules": rules}, origin="audit.toml")
    return [r.code for r in select_rules(cfg, available=list(ALL_RULES))]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({}, ALL),
        ({"select": ["ST03"]}, ["ST03"]),
        ({"select": ["stage-aging", "cd01"]}, ["ST03", "CD01"]),
        ({"select": ["ST"]}, ["ST01", "ST02", "ST03", "ST04"]),
        ({"select": ["follow-up"]}, ["FU01", "FU02", "FU03"]),
        ({"select": ["data-quality", "CL"], "ignore": ["DQ04", "won-without-handoff"]},
         ["CL01", "CL02", "DQ01", "DQ02", "DQ03"]),
        ({"ignore": ["QL", "stages", "FU", "close-dates", "closing", "DQ"]}, []),
    ],
)  # fmt: skip
def test_select_and_ignore(rules: dict, expected: list[str]) -> None:
    assert _codes(rules) == expected


def test_unknown_selector_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"audit.toml: key `rules.ignore`: 'XX' matches no rule"):
        _codes({"ignore": ["XX"]})


def test_severity_override_by_code_and_name() -> None:
    snap = build_snapshot(
        {
            "opportunities": [
                {"id": "A", "stage": "proposal", "close_date": "2026-03-01"},
                {"id": "B", "stage": "closed_lost"},
            ]
        }
    )
    cfg = parse_config(
        {
            "source": {"type": "demo"},
            "rules": {
                "select": ["CD01", "CL01"],
                "severity": {"CD01": "info", "missing-loss-reason": "error"},
            },
        }
    )
    result = run_audit(snap, cfg, as_of="2026-03-31")
    sev = dict(zip(result.violations["rule_code"], result.violations["severity"], strict=True))
    assert sev == {"CD01": "info", "CL01": "error"}
    assert dict(zip(result.coverage["rule_code"], result.coverage["severity"], strict=True)) == sev
    # the class default is untouched
    assert [r for r in ALL_RULES if r.code == "CD01"][0].severity == "error"


def test_rule_params_are_applied() -> None:
    cfg = parse_config({"source": {"type": "demo"}, "rules": {"FU03": {"max_days": 10}}})
    fu03 = [r for r in select_rules(cfg) if r.code == "FU03"][0]
    assert fu03.p == {"max_days": 10}
    cfg = parse_config({"source": {"type": "demo"}, "rules": {"won-without-handoff": {}}})
    assert [r for r in select_rules(cfg) if r.code == "CL03"][0].p == {"max_days": 30}


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"FU03": {"max_dayz": 3}},
         "audit.toml: unknown key `rules.FU03.max_dayz`: rule FU03 (no-recent-activity) has "
         "parameters: max_days"),
        ({"ST03": {"limit": 3}},
         "audit.toml: unknown key `rules.ST03.limit`: rule ST03 (stage-aging) has "
         "parameters: none"),
        ({"FU03": {"max_days": "ten"}},
         "audit.toml: key `rules.FU03.max_days`: expected int, got str 'ten'"),
        ({"CD02": {"min_changes": 0}},
         "audit.toml: key `rules.CD02.min_changes`: must be at least 1, got 0"),
        ({"DQ01": {"from_stage": "closing"}},
         "audit.toml: key `rules.DQ01.from_stage`: 'closing' is not allowed; allowed: lead, "),
        ({"ZZ99": {"x": 1}},
         "audit.toml: unknown key `rules.ZZ99`: no rule has that code or name"),
    ],
)  # fmt: skip
def test_bad_rule_params_name_the_key(rules: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _codes(rules)
    assert str(err.value).startswith(message)
