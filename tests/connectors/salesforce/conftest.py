"""Fixtures for the Salesforce connector tests (the fake org lives in fake_org.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import responses

from tests.connectors.salesforce.fake_org import FIELD_OPTIONS, INSTANCE_URL, SESSION_ENV, FakeOrg


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as r:
        yield r


@pytest.fixture
def org(rsps: responses.RequestsMock) -> FakeOrg:
    return FakeOrg(rsps)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_connector(sleeps: list[float]):  # noqa: ANN201 - a factory fixture
    from connectors.salesforce.connector import SalesforceConnector

    def make(env: dict[str, str] | None = None, **options: Any) -> SalesforceConnector:
        opts = {
            "auth": "session",
            "session_id_env": "SF_SESSION",
            "instance_url": INSTANCE_URL,
            "name": "acme",
            **FIELD_OPTIONS,
            **options,
        }
        return SalesforceConnector(
            SalesforceConnector.Options.model_validate(opts),
            env=SESSION_ENV if env is None else env,
            sleep=sleeps.append,
        )

    return make
