"""docs/fault-matrix.md comes from a run of tests/security (scripts/fault_matrix.py) and lists
every scenario of the tables here, each as passed: adding a scenario without regenerating the
doc fails this test."""

from __future__ import annotations

import re
from pathlib import Path

from tests.security.faults import HUBSPOT, SALESFORCE, SMTP
from tests.security.matrix import HEADER
from tests.security.test_csv_formulas import SCENARIOS as CSV_FORMULAS
from tests.security.test_fuzz_parsers import FAMILIES, LONG_EXAMPLES
from tests.security.test_markdown_injection import SCENARIOS as MARKDOWN
from tests.security.test_output_faults import OUTPUT_FAULTS
from tests.security.test_resource_caps import SCENARIOS as CAPS
from tests.security.test_secret_scan import SCENARIOS
from tests.security.test_smtp_relay import SCENARIOS as SMTP_RELAY

DOC = Path(__file__).resolve().parents[2] / "docs" / "fault-matrix.md"


def doc_rows() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| `([^`]+)` \|(.*)\|$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_doc_lists_every_scenario_and_family() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert text.startswith(HEADER) and "Failed in this run" not in text
    expected = ({c["id"] for c in SALESFORCE + HUBSPOT + SMTP} | set(FAMILIES)
                | {f"secrets-{s[0]}" for s in SCENARIOS} | {"history-commit-fails"}
                | {c["id"] for c in OUTPUT_FAULTS}
                | {"secrets-scheduler-alert-token-newline"}
                | set(CSV_FORMULAS + MARKDOWN + CAPS + SMTP_RELAY))  # issue 17
    rows = doc_rows()
    assert sorted(expected - set(rows)) == []
    assert sorted(set(rows) - expected) == []  # nothing stale either


def test_doc_outcomes_match_the_expectations() -> None:
    rows = doc_rows()
    for c in SALESFORCE + HUBSPOT:
        cells = rows[c["id"]]
        assert f"| {c['expect']} | {c['expect']}: " in cells, c["id"]
        if c["expect"] == "stops":
            assert "recorded as failed" in cells, c["id"]
    for name in FAMILIES:
        n = int(re.search(r"\| (\d+) examples, no traceback", rows[name]).group(1))
        assert n >= LONG_EXAMPLES  # the doc comes from the long fuzzing run
