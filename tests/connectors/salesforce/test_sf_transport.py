"""Transport helpers: Retry-After, Sforce-Limit-Info, call kinds, error bodies."""

from __future__ import annotations

import email.utils
import time

import pytest
import requests

from connectors.salesforce.transport import CallCounter, call_kind, error_detail, retry_after_s


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
    assert c.usage == {
        "api_usage": {"used": 25, "total": 5000, "remaining": 4975},
        "per_app_api_usage": {"used": 17, "total": 250, "app": "audit-bot"},
    }


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
        ("<html>\n  Service   Unavailable </html>", (None, "<html> Service Unavailable </html>")),
    ],
)
def test_error_detail(body, expected) -> None:
    assert error_detail(_resp(body)) == expected
