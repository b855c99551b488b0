"""Fixtures for the report tests (the fixed run itself is built in reports_fixture.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.results import AuditRun
from tests.reports.reports_fixture import HISTORY, make_run


@pytest.fixture
def audit_run(tmp_path: Path) -> AuditRun:
    return make_run(tmp_path)


@pytest.fixture
def audit_run_with_history(tmp_path: Path) -> AuditRun:
    return make_run(tmp_path, history=HISTORY)
