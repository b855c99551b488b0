"""`crm-audit rules`: the whole catalogue as JSON, one rule with parameters and an example."""

from __future__ import annotations

import json

from click.testing import CliRunner

from auditor.app.cli import main
from rules.catalogue import ALL_RULES


def test_rules_json_lists_every_rule() -> None:
    out = CliRunner().invoke(main, ["rules", "--json"])
    assert out.exit_code == 0, out.output
    docs = json.loads(out.output)
    assert [d["code"] for d in docs] == [r.code for r in ALL_RULES]
    for d in docs:
        assert d["why"] and d["fix"] and d["summary"] and d["details"]
        assert d["example"]["message"]
    st03 = next(d for d in docs if d["code"] == "ST03")
    assert st03["requires"] == ["stage", "stage_entered_at"]
    dq01 = next(d for d in docs if d["code"] == "DQ01")
    assert dq01["params"]["from_stage"]["default"] == "proposal"
    assert dq01["params"]["from_stage"]["choices"][0] == "lead"


def test_rules_code_shows_parameters_and_example() -> None:
    out = CliRunner().invoke(main, ["rules", "no-recent-activity"])
    assert out.exit_code == 0, out.output
    text = out.output
    assert text.startswith("FU03  no-recent-activity  [warning, follow-up]\n")
    assert "Why it matters:" in text and "How to fix:" in text
    assert "max_days (int, default 30): days without any activity on an open deal" in text
    assert "Example (audit as of 2026-03-31):" in text
    assert "flagged: no activity for 45 days (limit 30)" in text


def test_rules_code_with_history_example() -> None:
    out = CliRunner().invoke(main, ["rules", "ST01"])
    assert "stage history: contact (2026-02-01) → qualification (2026-02-05)" in out.output
    assert "flagged: skipped discovery, solution (history jumps past them)" in out.output


def test_unknown_rule_code_is_a_user_error() -> None:
    out = CliRunner().invoke(main, ["rules", "ZZ01"])
    assert out.exit_code == 2
    assert "no rule has code or name 'ZZ01'" in out.output
