"""Rate limits and faults: retried within bounds, honouring Retry-After; else a clear stop."""

from __future__ import annotations

import json
import logging
import socket
import traceback
from datetime import UTC, datetime

import pytest
from pandas.testing import assert_frame_equal

from auditor.errors import ConnectorError
from auditor.secrets import install_log_redaction
from auditor.snapshot import ApiLimit
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.options import HubSpotOptions
from tests.connectors.hubspot.conftest import TOKEN, expected_frames
from tests.connectors.hubspot.fake_server import rate_limit_body

DEALS = "/crm/v3/objects/deals"
SEARCH = "/crm/v3/objects/deals/search"
LIMIT_HEADERS = {"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "0",
                 "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}


@pytest.mark.parametrize("headers,waited", [
    ({"Retry-After": "7"}, 7.0),                                     # server says how long
    ({"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}, 10.0),  # wait out the window
    ({}, 1.0),                                                       # backoff base delay
])
def test_429_rolling_limit_retried_then_success(fake, make_connector, sleeps, headers,
                                                waited) -> None:
    fake.fail(DEALS, 429, rate_limit_body("TEN_SECONDLY_ROLLING"), headers)
    snap = make_connector(portal_id=4242, portal_timezone="America/New_York").pull()
    assert sleeps == [waited]
    assert len(fake.calls(DEALS)) == 2
    assert snap.meta.api_calls == 5  # pipelines, 2 owner listings, deals twice
    # the refused attempt counts as a call and as a transient failure
    assert snap.meta.api_usage.transient_failures == 1
    assert snap.meta.api_usage.calls_by_endpoint == {
        "GET /crm/v3/pipelines/deals": 1, "GET /crm/v3/owners": 2, "GET /crm/v3/objects/deals": 2}
    assert_frame_equal(snap.opportunities, expected_frames()["opportunities"])


def test_429_on_post_search_retried(fake, make_connector, sleeps) -> None:
    fake.fail(SEARCH, 429, rate_limit_body("TEN_SECONDLY_ROLLING"), {"Retry-After": "2"})
    c = make_connector(portal_id=1, portal_timezone="UTC", track_archived=False)
    c._now = lambda: datetime(2024, 6, 1, tzinfo=UTC)
    snap = c.pull(since=datetime(2024, 3, 1, tzinfo=UTC))
    assert sleeps == [2.0]
    assert [r.status for r in fake.calls(SEARCH)] == [429, 200]
    assert len(snap.opportunities) == 5


def test_daily_limit_stops_at_once(fake, make_connector, sleeps) -> None:
    fake.fail(DEALS, 429, rate_limit_body("DAILY"), {"X-HubSpot-RateLimit-Daily-Remaining": "0"})
    with pytest.raises(ConnectorError) as err:
        make_connector(portal_id=1, portal_timezone="UTC").pull()
    msg = str(err.value)
    assert "DAILY API limit" in msg and "GET /crm/v3/objects/deals" in msg
    assert "without passing on a partial pull" in msg
    assert len(fake.calls(DEALS)) == 1 and sleeps == []


def test_502_then_success(fake, make_connector, sleeps) -> None:
    fake.fail("/crm/v3/pipelines/deals", 502, {"status": "error", "message": "Bad Gateway"})
    snap = make_connector(portal_id=4242, portal_timezone="America/New_York").pull()
    assert sleeps == [1.0]
    assert len(fake.calls("/crm/v3/pipelines/deals")) == 2
    assert_frame_equal(snap.opportunities, expected_frames()["opportunities"])


def test_dropped_connection_then_success(fake, make_connector, sleeps) -> None:
    fake.fail("/crm/v3/owners/", None)
    snap = make_connector(portal_id=4242, portal_timezone="America/New_York").pull()
    assert sleeps == [1.0]
    assert len(snap.owners) == 3


def test_body_cut_short_then_success(fake, make_connector, sleeps) -> None:
    fake.fail("/crm/v3/pipelines/deals", 200, {"results": []}, truncate=True)
    snap = make_connector(portal_id=4242, portal_timezone="America/New_York").pull()
    assert sleeps == [1.0]
    assert len(fake.calls("/crm/v3/pipelines/deals")) == 2
    assert_frame_equal(snap.opportunities, expected_frames()["opportunities"])


def test_5xx_bounded_then_clear_error_and_no_snapshot(fake, make_connector, sleeps) -> None:
    fake.fail(DEALS, 503, {"status": "error", "message": "Service Unavailable"}, times=10)
    c = make_connector(portal_id=1, portal_timezone="UTC", retry_attempts=3)
    with pytest.raises(ConnectorError,
                       match=r"HubSpot GET /crm/v3/objects/deals failed after 3 attempts: "
                             r"HTTP 503 from HubSpot: Service Unavailable"):
        c.pull()
    assert len(fake.calls(DEALS)) == 3
    assert sleeps == [1.0, 2.0]


def test_connection_refused_is_a_clear_message(sleeps) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    opts = HubSpotOptions(host=f"http://127.0.0.1:{port}", retry_attempts=2)
    c = HubSpotConnector(opts, env={"HUBSPOT_ACCESS_TOKEN": TOKEN}, sleep=sleeps.append)
    with pytest.raises(ConnectorError) as err:
        c.pull()
    assert str(err.value) == (
        "HubSpot GET /crm/v3/pipelines/deals failed after 2 attempts: cannot reach HubSpot at "
        f"http://127.0.0.1:{port}: connection refused")
    assert sleeps == [1.0]


def test_rate_limit_headers_recorded_and_respected(fake, make_connector, sleeps) -> None:
    fake.response_headers = {**LIMIT_HEADERS, "X-HubSpot-RateLimit-Daily": "250000",
                             "X-HubSpot-RateLimit-Daily-Remaining": "249000"}
    snap = make_connector(portal_id=1, portal_timezone="UTC").pull()
    # window used up after every call → wait it out before the next (4 calls, 3 waits)
    assert sleeps == [10.0, 10.0, 10.0]
    assert snap.meta.api_usage.limits == {
        "daily": ApiLimit(limit=250000, remaining=249000, window="day"),
        "rolling": ApiLimit(limit=190, remaining=0, window="10 s"),
    }
    assert snap.meta.api_usage.limits["daily"].used == 1000
    assert (snap.meta.api_usage.calls, snap.meta.api_usage.transient_failures) == (4, 0)


def test_unauthorized_names_the_env_var(fake) -> None:
    c = HubSpotConnector(HubSpotOptions(host=fake.host), env={"HUBSPOT_ACCESS_TOKEN": "pat-wrong"})
    with pytest.raises(ConnectorError, match="401 unauthorized: the access token in environment "
                                             "variable HUBSPOT_ACCESS_TOKEN was refused"):
        c.pull()
    assert len(fake.requests) == 1  # not retried


def test_forbidden_names_the_scopes(fake, make_connector) -> None:
    fake.fail("/crm/v3/owners/", 403, {"status": "error", "message": "missing scopes"})
    with pytest.raises(ConnectorError, match="crm.objects.deals.read, crm.objects.owners.read"):
        make_connector(portal_id=1, portal_timezone="UTC").pull()


def test_token_never_in_logs_exceptions_or_reports(fake, make_connector, caplog) -> None:
    install_log_redaction()
    caplog.set_level(logging.DEBUG)
    snap = make_connector(stage_history="full").pull()
    texts = [caplog.text, json.dumps(snap.meta.to_dict(), default=str),
             snap.opportunities.to_csv(), snap.stage_history.to_csv(), snap.owners.to_csv()]
    errors = []
    # an API that echoes the token in an error body, a refused token, an exhausted retry
    fake.fail(DEALS, 400, {"status": "error", "message": f"bad header Bearer {TOKEN}"})
    fake.fail(DEALS, 500, {"status": "error", "message": f"oops {TOKEN}"}, times=5)
    for _ in range(2):
        with pytest.raises(ConnectorError) as err:
            make_connector(portal_id=1, portal_timezone="UTC").pull()
        errors.append(err.value)
    c = HubSpotConnector(HubSpotOptions(host="http://127.0.0.1:1", retry_attempts=1),
                         env={"HUBSPOT_ACCESS_TOKEN": TOKEN})
    with pytest.raises(ConnectorError) as err:
        c.pull()
    errors.append(err.value)
    for e in errors:
        texts += [str(e), repr(e), "".join(traceback.format_exception(e))]
    texts.append(caplog.text)
    assert "***" in str(errors[0])  # the echoed token was masked, not dropped silently
    for t in texts:
        assert TOKEN not in t
