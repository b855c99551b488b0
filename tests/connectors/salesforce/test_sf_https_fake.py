"""The fake org served over real HTTPS on 127.0.0.1 (tests/support/salesforce_server.py, used by
the benchmark's incremental run) answers like the in-process fake: same snapshot, same calls,
and an incremental pull is filtered by the SOQL condition the connector sends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas.testing as pdt
import pytest

from connectors.streams import PriorPull, StreamState
from tests.connectors.salesforce import expected
from tests.connectors.salesforce.fake_org import FakeOrg
from tests.support.salesforce_server import SalesforceServer


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SalesforceServer]:
    server = SalesforceServer(FakeOrg(None), tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.cert_file))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    yield server
    server.close()


def test_full_pull_over_https_gives_the_exact_snapshot(served, make_connector) -> None:
    snap = make_connector(instance_url=served.instance_url).pull()
    # links point at the instance the connector talked to
    assert snap.opportunities["url"].str.startswith(served.instance_url + "/lightning/").all()
    pdt.assert_frame_equal(snap.opportunities.drop(columns="url"),
                           expected.opportunities().drop(columns="url"))
    pdt.assert_frame_equal(snap.stage_history, expected.stage_history())
    assert snap.meta.api_calls == 8 == len(served.log)
    assert [e["path"].rsplit("/", 2)[-2] for e in served.log][:2] == ["query", "Opportunity"]


def test_incremental_pull_is_filtered_by_the_query_it_sends(served, make_connector) -> None:
    org = served.org
    stamp = "2030-01-01T00:00:00.000+0000"  # one record changed "later" than the bookmark
    changed = org.records["Opportunity"][0]
    changed["SystemModstamp"] = stamp
    since = datetime(2029, 12, 31, tzinfo=UTC)
    c = make_connector(instance_url=served.instance_url)
    c.prior = PriorPull(since, [], since, StreamState(since, since, since))
    c._now = lambda: since + timedelta(days=1)
    snap = c.pull(since=since)
    assert snap.meta.incremental is True
    assert snap.opportunities["id"].tolist() == [changed["Id"]]
    soql = [e["soql"] for e in served.log if e["soql"] and "FROM Opportunity " in e["soql"]]
    assert soql and all("SystemModstamp > 2029-12-31T00:00:00Z" in q for q in soql)
