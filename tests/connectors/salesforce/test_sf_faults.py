"""Faults: retries with backoff / Retry-After, limit stops, re-login, bad bodies, budget floor."""

from __future__ import annotations

import pandas.testing as pdt
import pytest
import requests
import responses

from auditor.errors import ConnectorError
from tests.connectors.salesforce import expected
from tests.connectors.salesforce.fake_org import FakeOrg, login_reply, sf_error

LIMIT_HIT = sf_error(
    403,
    "REQUEST_LIMIT_EXCEEDED",
    "TotalRequests Limit exceeded.",
    {"Sforce-Limit-Info": "api-usage=15000/15000"},
)
JSON = {"Content-Type": "application/json"}


def test_429_then_success_honours_retry_after(org, make_connector, sleeps) -> None:
    org.fail(org.page_key("Opportunity", 2), (429, {"Retry-After": "7", **JSON}, "[]"))
    snap = make_connector().pull()
    pdt.assert_frame_equal(snap.opportunities, expected.opportunities())
    assert sleeps == [7.0]
    assert snap.meta.api_calls == 9
    assert snap.meta.api_usage.transient_failures == 1
    # the refused page counts as a call: 8 query pages + 1 retry, and the describe
    assert snap.meta.api_usage.calls_by_endpoint == {
        "GET /query": 8, "GET /sobjects/Opportunity/describe": 1}


def test_503_twice_then_success_backs_off_exponentially(org, make_connector, sleeps) -> None:
    unavailable = (503, {"Content-Type": "text/html"}, "<html>Service Unavailable</html>")
    org.fail("OpportunityHistory", unavailable, unavailable)
    snap = make_connector().pull()
    pdt.assert_frame_equal(snap.stage_history, expected.stage_history())
    assert sleeps == [1.0, 2.0]
    assert snap.meta.api_calls == 10


def test_timeout_is_retried(org, make_connector, sleeps) -> None:
    org.fail("User", requests.exceptions.ReadTimeout("read timed out"))
    snap = make_connector().pull()
    pdt.assert_frame_equal(snap.owners, expected.owners())
    assert sleeps == [1.0]


def test_request_limit_exceeded_stops_clearly_and_passes_nothing_on(
    org,
    make_connector,
    sleeps,
) -> None:
    org.fail("Opportunity", *[LIMIT_HIT] * 5)
    conn = make_connector()
    with pytest.raises(ConnectorError) as err:
        conn.pull()
    assert str(err.value) == (
        "Salesforce Opportunity query, page 1 (GET /services/data/v59.0/query/) failed after "
        "5 attempts: HTTP 403 REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded. "
        "(daily API requests used: 15000 of 15000)"
    )
    assert sleeps == [1.0, 2.0, 4.0, 8.0]
    assert not any("FROM OpportunityHistory" in q for q in org.soql)  # stopped at once


def test_retry_after_is_capped_by_backoff_max(org, make_connector, sleeps) -> None:
    org.fail("User", (429, {"Retry-After": "3600", **JSON}, "[]"))
    make_connector(backoff_max_s=30).pull()
    assert sleeps == [30.0]


def test_invalid_session_logs_in_again_and_succeeds(rsps, sleeps) -> None:
    from connectors.salesforce.connector import SalesforceConnector
    from tests.connectors.salesforce.fake_org import FIELD_OPTIONS

    org = FakeOrg(rsps)
    login = rsps.add(
        responses.POST,
        "https://login.salesforce.com/services/Soap/u/59.0",
        body=login_reply("soap_login_ok.xml"),
        content_type="text/xml",
    )
    org.fail("Opportunity", sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid"))
    opts = SalesforceConnector.Options.model_validate(
        {
            "auth": "password",
            "username": "ann.lee@acme.example",
            "password_env": "SF_PASSWORD",
            "security_token_env": "SF_TOKEN",
            "name": "acme",
            **FIELD_OPTIONS,
        }
    )
    conn = SalesforceConnector(
        opts, env={"SF_PASSWORD": "hunter2!x", "SF_TOKEN": "tok3nABCD"}, sleep=sleeps.append
    )
    snap = conn.pull()
    pdt.assert_frame_equal(snap.opportunities, expected.opportunities())
    assert login.call_count == 2
    # two sign-ins; the expired session's call and its repeat are both API calls
    assert (snap.meta.api_usage.logins, snap.meta.api_usage.calls) == (2, 9)
    assert snap.meta.api_usage.calls_by_endpoint["GET /query"] == 8
    assert snap.meta.api_calls == 9
    assert sleeps == []


def test_expired_session_id_without_login_flow_is_clear(org, make_connector) -> None:
    org.fail("OpportunityStage", sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid"))
    with pytest.raises(ConnectorError) as err:
        make_connector().pull()
    assert str(err.value) == (
        "Salesforce OpportunityStage query, page 1 failed: HTTP 401 INVALID_SESSION_ID: "
        "Session expired or invalid: the configured session id has expired; get a new one or "
        "use auth = 'jwt'"
    )


def test_malformed_json_body_is_a_clear_error(org, make_connector) -> None:
    org.fail(org.page_key("Opportunity", 2), (200, JSON, '{"totalSize": 7, "done": fal'))
    with pytest.raises(ConnectorError) as err:
        make_connector().pull()
    assert str(err.value).startswith(
        "Salesforce Opportunity query, page 2: the response is not valid JSON ("
    )


def test_unexpected_json_shape_is_a_clear_error(org, make_connector) -> None:
    org.fail("User", (200, JSON, '{"totalSize": 1, "done": true}'))
    with pytest.raises(
        ConnectorError,
        match=r"^Salesforce User query, page 1: unexpected "
        r"response shape \(no 'records' list\)$",
    ):
        make_connector().pull()


def test_unknown_custom_field_names_the_call_and_the_fix(org, make_connector) -> None:
    org.fail(
        "Opportunity",
        sf_error(400, "INVALID_FIELD", "No such column 'Loss_Reason__c' on entity 'Opportunity'."),
    )
    with pytest.raises(ConnectorError) as err:
        make_connector().pull()
    assert str(err.value) == (
        "Salesforce Opportunity query, page 1 failed: HTTP 400 INVALID_FIELD: No such column "
        "'Loss_Reason__c' on entity 'Opportunity'.; check the field names and filters under "
        "[source]"
    )


def test_budget_floor_refuses_to_start(rsps, make_connector) -> None:
    org = FakeOrg(rsps, limit_info="api-usage=14500/15000")
    with pytest.raises(ConnectorError) as err:
        make_connector().pull()
    assert str(err.value) == (
        "Salesforce org has 500 of 15000 daily API requests left, below "
        "source.min_remaining_api_calls = 1000: not pulling. Try again after the 24-hour window "
        "rolls over, or lower the floor."
    )
    assert len(rsps.calls) == 1 and len(org.soql) == 1


def test_budget_read_from_limits_when_no_header(rsps, make_connector) -> None:
    FakeOrg(rsps, limit_info="")
    rsps.add(
        responses.GET,
        "https://acme.my.salesforce.com/services/data/v59.0/limits/",
        json={"DailyApiRequests": {"Max": 15000, "Remaining": 200}},
    )
    with pytest.raises(ConnectorError, match="has 200 of 15000 daily API requests left"):
        make_connector().pull()
