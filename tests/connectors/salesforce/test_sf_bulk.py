"""Bulk API 2.0 path against the fake org's job flow: create, poll, paged results (the job's
SOQL run on the org, as CSV)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import pandas.testing as pdt
import pytest

from auditor.errors import ConnectorError
from tests.connectors.salesforce import expected
from tests.connectors.salesforce.fake_org import bulk_pages

JSON = {"Content-Type": "application/json"}


def _flow(rsps) -> list[str]:
    out = []
    for c in rsps.calls:
        u = urlparse(c.request.url)
        if "/jobs/query" not in u.path:
            continue
        q = parse_qs(u.query)
        tail = u.path.split("/jobs/query")[1] or "/"
        out.append(
            f"{c.request.method} {tail}" + (f" locator={q['locator'][0]}" if "locator" in q else "")
        )
    return out


def test_bulk_gives_the_same_snapshot_as_rest(org, rsps, make_connector, sleeps) -> None:
    bulk = make_connector(bulk="always", bulk_page_size=10).pull()
    pdt.assert_frame_equal(bulk.opportunities, expected.opportunities())
    pdt.assert_frame_equal(bulk.stage_history, expected.stage_history())
    pdt.assert_frame_equal(bulk.owners, expected.owners())
    assert bulk.meta.extra["api_paths"] == {"Opportunity": "bulk", "OpportunityHistory": "bulk"}
    assert bulk.meta.provided_fields == expected.PROVIDED

    assert _flow(rsps) == [
        "POST /",
        "GET /7508d0000Job000AAA",
        "GET /7508d0000Job000AAA",
        "GET /7508d0000Job000AAA/results",  # 7 opportunities: one page
        "POST /",
        "GET /7508d0000Job001AAA",
        "GET /7508d0000Job001AAA",
        "GET /7508d0000Job001AAA/results",  # 17 history rows: 10 + 7
        "GET /7508d0000Job001AAA/results locator=10",
    ]
    assert [j["operation"] for j in org.jobs] == ["query", "query"]
    assert org.jobs[1]["query"] == (
        "SELECT Id, OpportunityId, StageName, CloseDate, "
        "PrevCloseDate, CreatedDate FROM OpportunityHistory"
    )
    results = [c.request for c in rsps.calls if c.request.url.count("/results")]
    assert all(parse_qs(urlparse(r.url).query)["maxRecords"] == ["10"] for r in results)
    assert sleeps == [2.0, 2.0]  # one wait per job while it was InProgress
    usage = bulk.meta.api_usage  # stages, users and describe by REST; the two jobs as above
    assert (usage.calls, usage.logins) == (12, 0)
    assert usage.calls_by_endpoint == {
        "GET /query": 2,
        "GET /sobjects/Opportunity/describe": 1,
        "POST /jobs/query": 2,
        "GET /jobs/query/{id}": 4,
        "GET /jobs/query/{id}/results": 3,
    }
    assert usage.records_read == {"OpportunityStage": 12, "User": 3, "Opportunity": 7,
                                  "OpportunityHistory": 17}


def test_auto_switches_to_bulk_above_threshold(org, make_connector) -> None:
    snap = make_connector(bulk="auto", bulk_threshold=5).pull()
    pdt.assert_frame_equal(snap.opportunities, expected.opportunities())
    assert snap.meta.extra["api_paths"] == {"Opportunity": "bulk", "OpportunityHistory": "bulk"}
    # stage + user pages, one wasted first page per object, then the two jobs
    # stages, describe, users; per object the wasted REST page, create, 2 polls, 1 result page
    assert snap.meta.api_calls == 3 + (1 + 4) + (1 + 4)


def test_bulk_incremental_pull_runs_queryall(org, make_connector) -> None:
    snap = make_connector(bulk="always").pull(since=datetime(2024, 4, 1, tzinfo=UTC))
    # deleted rows (IsDeleted) come only from queryAll; history needs none
    assert [j["operation"] for j in org.jobs] == ["queryAll", "query"]
    assert "IsDeleted" in org.jobs[0]["query"]
    # the job's SOQL is run on the org: only deals modified after April 1st (00:00 UTC)
    assert snap.opportunities["id"].tolist() == [
        "0068d00000OpA01AAA", "0068d00000OpA04AAA", "0068d00000OpA05AAA", "0068d00000OpA06AAA",
        "0068d00000OpA07AAA"]


def test_failed_job_is_a_clear_error(org, make_connector) -> None:
    org.fail(
        "state:Opportunity",
        (
            200,
            JSON,
            json.dumps(
                {
                    "id": "7508d0000Job000AAA",
                    "state": "Failed",
                    "errorMessage": "INVALID_FIELD: No such column 'Budget__c'",
                }
            ),
        ),
    )
    with pytest.raises(ConnectorError) as err:
        make_connector(bulk="always").pull()
    assert str(err.value) == (
        "Salesforce Opportunity query: Bulk 2.0 job 7508d0000Job000AAA Failed: "
        "INVALID_FIELD: No such column 'Budget__c'"
    )


def test_job_polling_is_bounded(org, make_connector, sleeps) -> None:
    stuck = (200, JSON, json.dumps({"id": "7508d0000Job000AAA", "state": "InProgress"}))
    org.fail("state:Opportunity", *[stuck] * 10)
    with pytest.raises(ConnectorError) as err:
        make_connector(bulk="always", bulk_poll_s=1, bulk_timeout_s=5).pull()
    assert str(err.value) == (
        "Salesforce Opportunity query: Bulk 2.0 job 7508d0000Job000AAA still InProgress after "
        "7s (source.bulk_timeout_s = 5)"
    )
    assert sleeps == [1.0, 2.0, 4.0]


def test_results_page_429_is_retried(org, make_connector, sleeps) -> None:
    org.fail("results:OpportunityHistory", (429, {"Retry-After": "3", **JSON}, "[]"))
    snap = make_connector(bulk="always").pull()
    pdt.assert_frame_equal(snap.stage_history, expected.stage_history())
    assert sleeps == [2.0, 2.0, 3.0]


def test_results_page_with_fewer_rows_than_announced_is_an_error(org, make_connector) -> None:
    page = bulk_pages()["OpportunityHistory"][0]  # the recorded page, then cut
    org.bulk["OpportunityHistory"] = [page.rsplit("\n", 2)[0] + "\n"]  # last row cut off
    org.bulk_counts = {"OpportunityHistory": 17}
    with pytest.raises(ConnectorError) as err:
        make_connector(bulk="always").pull()
    assert str(err.value) == (
        "Salesforce OpportunityHistory query: Bulk 2.0 results page 1 of job 7508d0000Job001AAA "
        "announced 17 records but 16 could be read from its CSV"
    )
