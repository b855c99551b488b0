"""Suppressions: applied ones leave the findings but are counted; expired / unused are listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.config import parse_config
from auditor.engine import run_audit
from auditor.errors import ConfigError
from rules.testing import build_snapshot

SNAP_CASE = {
    "opportunities": [
        {"id": "A", "stage": "proposal", "close_date": "2026-03-01"},
        {"id": "B", "stage": "proposal", "close_date": "2026-03-10"},
        {"id": "C", "stage": "proposal", "close_date": "2026-03-20"},
        {"id": "L", "stage": "closed_lost"},
    ]
}
ENTRIES = [
    {"rule": "CD01", "record": "A", "reason": "contract in legal", "expires": "2026-04-30",
     "author": "ops@x"},
    {"rule": "close-date-past", "record": "B", "reason": "waiting for PO"},  # by name, no expiry
    {"rule": "CD01", "record": "C", "reason": "old exception", "expires": "2026-03-30"},
    {"rule": "CL01", "record": "A", "reason": "A is not lost"},
    {"rule": "XX42", "record": "L", "reason": "typo in the code"},
]  # fmt: skip


def _run(suppressions: dict, base_dir: Path | None = None):  # noqa: ANN202
    cfg = parse_config(
        {
            "source": {"type": "demo"},
            "rules": {"select": ["CD01", "CL01"]},
            "suppressions": suppressions,
        },
        origin="audit.toml",
        base_dir=base_dir,
    )
    return run_audit(build_snapshot(SNAP_CASE), cfg, as_of="2026-03-31")


def _check(result) -> None:  # noqa: ANN001
    found = sorted(
        zip(result.violations["rule_code"], result.violations["opportunity_id"], strict=True)
    )
    # A and B suppressed; C's suppression expired yesterday, so C is flagged again
    assert found == [("CD01", "C"), ("CL01", "L")]
    sup = result.suppressed
    assert sorted(sup["opportunity_id"]) == ["A", "B"]
    assert dict(zip(sup["opportunity_id"], sup["suppression_reason"], strict=True)) == {
        "A": "contract in legal",
        "B": "waiting for PO",
    }
    cov = result.coverage.set_index("rule_code")
    assert (cov.loc["CD01", "flagged"], cov.loc["CD01", "suppressed"]) == (1, 2)
    assert (cov.loc["CL01", "flagged"], cov.loc["CL01", "suppressed"]) == (1, 0)
    status = [(s["rule"], s["record"], s["status"]) for s in result.suppressions]
    assert status == [
        ("CD01", "A", "applied"),
        ("close-date-past", "B", "applied"),
        ("CD01", "C", "expired"),
        ("CL01", "A", "unused"),
        ("XX42", "L", "unknown-rule"),
    ]
    assert result.suppressions[0]["expires"] == "2026-04-30"
    assert result.suppressions[0]["author"] == "ops@x"


def test_inline_suppressions() -> None:
    _check(_run({"items": ENTRIES}))


def test_suppression_file(tmp_path: Path) -> None:
    lines = []
    for e in ENTRIES:
        lines.append("[[suppression]]")
        for k, v in e.items():
            lines.append(f'{k} = "{v}"' if k != "expires" else f"{k} = {v}")
    (tmp_path / "suppressions.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _check(_run({"file": "suppressions.toml"}, base_dir=tmp_path))


def test_no_suppressions_flags_everything() -> None:
    result = _run({})
    assert len(result.violations) == 4 and len(result.suppressed) == 0
    assert result.suppressions == []


def test_missing_suppression_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"key `suppressions.file`: .*nope.toml does not exist"):
        _run({"file": "nope.toml"}, base_dir=tmp_path)


def test_bad_suppression_entry_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text('[[suppression]]\nrule = "CD01"\nrecord = "A"\n')
    with pytest.raises(ConfigError, match=r"missing required key `suppression\[0\].reason`"):
        _run({"file": "s.toml"}, base_dir=tmp_path)
