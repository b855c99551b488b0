"""The shipped config snippets and the rule reference match the code."""

from __future__ import annotations

import tomllib
from pathlib import Path

from auditor.config import DEFAULT_EXIT_CRITERIA, DEFAULT_STAGE_LIMITS, parse_config
from auditor.engine import select_rules
from rules.catalogue import ALL_RULES
from rules.reference import catalogue_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _load(name: str) -> dict:
    return tomllib.loads((DOCS / "config" / name).read_text(encoding="utf-8"))


def test_process_snippet_documents_the_defaults() -> None:
    data = _load("process.toml")
    cfg = parse_config({"source": {"type": "demo"}, **data})
    assert cfg.process.stage_limits == DEFAULT_STAGE_LIMITS
    assert cfg.process.exit_criteria == DEFAULT_EXIT_CRITERIA
    assert parse_config({"source": {"type": "demo"}}).process == cfg.process


def test_rules_snippet_lists_every_parameter_with_its_default() -> None:
    data = _load("rules.toml")
    cfg = parse_config({"source": {"type": "demo"}, **data})
    assert len(select_rules(cfg)) == len(ALL_RULES)
    tables = cfg.rules.rule_params()
    with_params = {r.code: r for r in ALL_RULES if r.params}
    assert set(tables) == set(with_params)
    for code, rule in with_params.items():
        assert tables[code] == {k: p.default for k, p in rule.params.items()}


def test_rules_reference_is_up_to_date() -> None:
    assert (DOCS / "rules.md").read_text(encoding="utf-8") == catalogue_markdown(ALL_RULES), (
        "regenerate docs/rules.md with rules.reference.catalogue_markdown(ALL_RULES)"
    )
