"""Shared fixtures: one throwaway PostgreSQL server per test session, started on first use."""

from __future__ import annotations

import sys

# Many tests start Python subprocesses that import the project (`crm-audit` for kills, locks and
# exit codes, fake servers, portfolio workers); without cached bytecode each one compiles the
# project's modules again.
# Some CI images set PYTHONDONTWRITEBYTECODE: the test session writes the project's bytecode
# anyway (into the git-ignored __pycache__/), and the subprocesses read it.
sys.dont_write_bytecode = False

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from tests.support.postgres import PgCluster, PgServer  # noqa: E402


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    cluster = PgCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()
