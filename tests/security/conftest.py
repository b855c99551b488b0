"""Fixtures for the security tests: the existing fakes (Salesforce on ``responses``, HubSpot on
127.0.0.1), connectors pointed at them that never really sleep."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.options import HubSpotOptions
from connectors.salesforce.connector import SalesforceConnector
from tests.connectors.hubspot.conftest import CUSTOM, STAGE_MAP, TOKEN
from tests.connectors.hubspot.fake_server import FakeHubSpot
from tests.connectors.salesforce.fake_org import FIELD_OPTIONS, INSTANCE_URL, SESSION_ENV, FakeOrg


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as r:
        yield r


@pytest.fixture
def org(rsps: responses.RequestsMock) -> FakeOrg:
    return FakeOrg(rsps)


@pytest.fixture
def make_sf(sleeps: list[float]) -> Callable[..., SalesforceConnector]:
    def make(env: dict[str, str] | None = None, **options: Any) -> SalesforceConnector:
        opts = {"auth": "session", "session_id_env": "SF_SESSION", "instance_url": INSTANCE_URL,
                "name": "acme", **FIELD_OPTIONS, **options}
        return SalesforceConnector(SalesforceConnector.Options.model_validate(opts),
                                   env=SESSION_ENV if env is None else env, sleep=sleeps.append)
    return make


@pytest.fixture
def hs() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(token=TOKEN) as f:
        yield f


@pytest.fixture
def make_hs(hs: FakeHubSpot, sleeps: list[float]) -> Callable[..., HubSpotConnector]:
    def make(**over: Any) -> HubSpotConnector:
        opts: dict[str, Any] = {"host": hs.host, "stage_map": STAGE_MAP, "custom_fields": CUSTOM,
                                "search_min_interval_s": 0, "portal_id": 4242,
                                "portal_timezone": "America/New_York", **over}
        return HubSpotConnector(HubSpotOptions(**opts), env={"HUBSPOT_ACCESS_TOKEN": TOKEN},
                                sleep=sleeps.append)
    return make


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With FAULT_MATRIX_DOC set (scripts/fault_matrix.py), write the results table there."""
    import os
    from pathlib import Path

    target = os.environ.get("FAULT_MATRIX_DOC")
    if not target:
        return
    from tests.security.matrix import write

    failed = [r.nodeid for r in session.stash.get(_FAILED, [])]
    write(Path(target), failed=failed)


_FAILED = pytest.StashKey[list]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        item.session.stash.setdefault(_FAILED, []).append(rep)
