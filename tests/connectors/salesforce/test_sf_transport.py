"""Transport helpers: Retry-After, Sforce-Limit-Info, call kinds, error bodies."""

from __future__ import annotations

import email.utils
import time

import pytest
import requests

from auditor.snapshot import ApiLimit
from connectors.salesforce.transport import (
    CallCounter,
    call_kind,
    endpoint,
    error_detail,
    retry_after_s,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7.0), ("0.5", 0.5), ("-3", 0.0), (None, None), ("", None), ("soon", None)],
)
def test_retry_after_seconds(value, expected) -> None:
    assert retry_after_s(value) == expected


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 27 <= retry_after_s(when) <= 30


def test_limit_info_with_per_app_usage() -> None:
    c = CallCounter()
    c.record_limits("api-usage=25/5000; per-app-api-usage=17/250(appName=audit-bot)")
    assert c.limits == {
        "daily": ApiLimit(limit=5000, remaining=4975, window="day"),
        "per_app": ApiLimit(limit=250, remaining=233, window="day", scope="audit-bot"),
    }
    assert (c.limits["daily"].used, c.limits["per_app"].used) == (25, 17)


@pytest.mark.parametrize(
    ("method", "url", "label"),
    [
        ("GET", "https://acme.my.salesforce.com/services/data/v59.0/query/?q=SELECT+Id",
         "GET /query"),
        ("GET", "https://acme.my.salesforce.com/services/data/v59.0/query/01gD0000002HU6K-2000",
         "GET /query"),
        ("get", "https://acme.my.salesforce.com/services/data/v59.0/queryAll/?q=SELECT+Id",
         "GET /queryAll"),
        ("GET", "https://acme.my.salesforce.com/services/data/v59.0/sobjects/Opportunity/describe",
         "GET /sobjects/Opportunity/describe"),
        ("POST", "https://acme.my.salesforce.com/services/data/v59.0/jobs/query",
         "POST /jobs/query"),
        ("GET", "https://acme.my.salesforce.com/services/data/v59.0/jobs/query/750R0000/results"
         "?locator=abc", "GET /jobs/query/{id}/results"),
        ("GET", "https://acme.my.salesforce.com/services/data/v59.0/jobs/query/750R0000",
         "GET /jobs/query/{id}"),
    ],
)
def test_endpoint_labels_leave_out_cursors_and_job_ids(method, url, label) -> None:
    assert endpoint(method, url) == label


def test_counter_counts_api_calls_by_endpoint_and_logins_apart() -> None:
    c = CallCounter()
    c.count("POST", "https://login.salesforce.com/services/oauth2/token")
    c.count("GET", "https://acme.my.salesforce.com/services/data/v59.0/query/?q=x")
    c.count("GET", "https://acme.my.salesforce.com/services/data/v59.0/query/01g-2000")
    c.count("POST", "https://acme.my.salesforce.com/services/data/v59.0/jobs/query")
    usage = c.as_meta()
    assert (usage.calls, usage.logins) == (3, 1) == (c.api_calls, c.by_kind["login"])
    assert usage.calls_by_endpoint == {"GET /query": 2, "POST /jobs/query": 1}


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://login.salesforce.com/services/oauth2/token", "login"),
        ("https://test.salesforce.com/services/Soap/u/59.0", "login"),
        ("https://acme.my.salesforce.com/services/data/v59.0/jobs/query/750x/results", "bulk"),
        ("https://acme.my.salesforce.com/services/data/v59.0/query/01g-2000", "rest"),
    ],
)
def test_call_kind(url, kind) -> None:
    assert call_kind(url) == kind


def _resp(body: str, status: int = 400) -> requests.Response:
    r = requests.Response()
    r.status_code, r._content = status, body.encode()
    return r


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]',
            ("INVALID_SESSION_ID", "Session expired or invalid"),
        ),
        (
            '{"error": "invalid_grant", "error_description": "expired access/refresh token"}',
            ("invalid_grant", "expired access/refresh token"),
        ),
        (
            "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Bad"
            "</sf:exceptionMessage>",
            ("INVALID_LOGIN", "Bad"),
        ),
        ("<html>\n  Service   Unavailable </html>",
         (None, "an HTML page instead of an API response: Service Unavailable")),
    ],
)
def test_error_detail(body, expected) -> None:
    assert error_detail(_resp(body)) == expected
