"""The connectors only read: every request they make against the fakes is a GET, a login, or
one of the POSTs that read (Salesforce Bulk 2.0 query job; HubSpot search and batch read), and
the transports refuse anything else before it leaves the process."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pytest

from auditor.errors import ConnectorError
from connectors.hubspot.transport import READ_POSTS
from connectors.salesforce.transport import refuse_writes

ROOT = Path(__file__).resolve().parents[2]
SF_READ_POSTS = re.compile(r"/services/(oauth2/token|Soap/u/[\d.]+|data/v[\d.]+/jobs/query/?)$")


def sf_requests(rsps) -> list[tuple[str, str, dict | None]]:
    out = []
    for c in rsps.calls:
        body = c.request.body
        parsed = json.loads(body) if body and c.request.method == "POST" and "/jobs/query" in \
            c.request.url else None
        out.append((c.request.method, urlparse(c.request.url).path, parsed))
    return out


@pytest.mark.parametrize("options,since", [
    ({}, None),                                                   # REST full pull
    ({"bulk": "always"}, datetime(2024, 1, 1, tzinfo=UTC)),      # Bulk 2.0 queryAll jobs
    ({"opportunity_filter": "Amount > 0"}, datetime(2024, 1, 1, tzinfo=UTC)),  # incremental
])
def test_salesforce_pull_only_reads(org, rsps, make_sf, options, since) -> None:
    make_sf(**options).pull(since=since)
    reqs = sf_requests(rsps)
    assert reqs, "the pull made no request"
    methods = {m for m, _, _ in reqs}
    assert methods <= {"GET", "POST"}
    for method, path, body in reqs:
        if method == "POST":
            assert SF_READ_POSTS.search(path), path
            assert body["operation"] in ("query", "queryAll")
            assert body["query"].startswith("SELECT ")
    if options.get("bulk") == "always":
        assert {b["operation"] for m, _, b in reqs if m == "POST"} == {"queryAll", "query"}
    else:
        assert methods == {"GET"}


def test_salesforce_check_only_reads(org, rsps, make_sf) -> None:
    make_sf().check()
    assert {m for m, _, _ in sf_requests(rsps)} == {"GET"}


@pytest.mark.parametrize("method,url,body", [
    ("PATCH", "https://x.my.salesforce.com/services/data/v59.0/sobjects/Opportunity/006", None),
    ("DELETE", "https://x.my.salesforce.com/services/data/v59.0/sobjects/Opportunity/006", None),
    ("POST", "https://x.my.salesforce.com/services/data/v59.0/sobjects/Opportunity", {}),
    ("PUT", "https://x.my.salesforce.com/services/data/v59.0/jobs/ingest/750/batches", None),
    ("POST", "https://x.my.salesforce.com/services/data/v59.0/jobs/ingest",
     {"operation": "insert", "object": "Opportunity"}),
    ("POST", "https://x.my.salesforce.com/services/data/v59.0/jobs/query",
     {"operation": "delete", "query": "SELECT Id FROM Opportunity"}),
    ("POST", "https://x.my.salesforce.com/services/data/v59.0/composite", {}),
])
def test_salesforce_session_refuses_writes(method, url, body) -> None:
    with pytest.raises(ConnectorError, match=f"refused {method} .*only reads"):
        refuse_writes(method, url, body)


def test_salesforce_write_is_refused_before_it_is_sent(org, rsps, make_sf) -> None:
    conn = make_sf()
    t = conn._connect()
    before = len(rsps.calls)
    with pytest.raises(ConnectorError, match="refused PATCH"):
        t.session.request("PATCH", "https://acme.my.salesforce.com/services/data/v59.0/sobjects/"
                          "Opportunity/0061", json={"StageName": "Closed Won"})
    assert len(rsps.calls) == before  # nothing left the process


def hs_requests(fake) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests]


@pytest.mark.parametrize("options,since", [
    ({}, None),                                                    # list pages
    ({"stage_history": "full"}, None),                             # propertiesWithHistory
    ({"stage_history": "full", "portal_id": None, "portal_timezone": None},
     datetime(2024, 3, 1, tzinfo=UTC)),                            # search + batch read
])
def test_hubspot_pull_only_reads(hs, make_hs, options, since) -> None:
    c = make_hs(**options)
    c._now = lambda: datetime(2024, 6, 1, tzinfo=UTC)
    c.pull(since=since)
    reqs = hs_requests(hs)
    assert reqs
    for method, path in reqs:
        assert method == "GET" or f"{method} {path}" in READ_POSTS, (method, path)
    if since is not None:  # the read POSTs were really exercised
        assert {p for m, p in reqs if m == "POST"} == {
            "/crm/v3/objects/deals/search", "/crm/v3/objects/deals/batch/read"}


def test_hubspot_check_only_reads(hs, make_hs) -> None:
    make_hs().check()
    assert {m for m, _ in hs_requests(hs)} == {"GET"}


@pytest.mark.parametrize("what", [
    "PATCH /crm/v3/objects/deals/1", "POST /crm/v3/objects/deals",
    "POST /crm/v3/objects/deals/batch/update", "DELETE /crm/v3/objects/deals/1",
])
def test_hubspot_transport_refuses_writes(hs, make_hs, what) -> None:
    t = make_hs().transport()
    called = []
    with pytest.raises(ConnectorError, match="only reads"):
        t._call(what, lambda: called.append(1))
    assert called == [] and hs.requests == []


def test_no_write_verbs_in_connector_code() -> None:
    """No HTTP write verb or CRM write API is spelled anywhere in the connector packages."""
    pattern = re.compile(
        r"""["'](PATCH|PUT|DELETE)["']|sf\.\w+\.(create|update|upsert|delete)\(|basic_api\.(create|"""
        r"""update|archive)|batch_api\.(create|update|archive|upsert)|jobs/ingest""")
    hits = [f"{p.relative_to(ROOT)}: {m.group(0)}"
            for p in sorted((ROOT / "connectors").rglob("*.py"))
            for m in pattern.finditer(p.read_text())]
    assert hits == []
