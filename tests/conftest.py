"""Shared fixtures: one throwaway PostgreSQL server per test session, started on first use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres import PgCluster, PgServer


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    cluster = PgCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()
