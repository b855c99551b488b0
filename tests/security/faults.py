"""The fault scenarios, as data: one runner in test_fault_matrix.py covers them all.

CRM scenarios put a fault in front of one call of the fakes (tests/connectors/...): ``key`` says
which call (Salesforce: an object's first query page, ``page:<Object>:<n>``, or a Bulk 2.0
step ``job:`` / ``state:`` / ``results:<Object>``; HubSpot: a path), ``replies`` what the fake
answers instead, in order. ``expect`` is ``recovers`` (the pull succeeds with the complete,
expected Snapshot after exactly ``sleeps`` waits) or ``stops`` (a ConnectorError whose message
matches ``error``; nothing is passed on). SMTP scenarios list each recipient's status.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from tests.connectors.salesforce.fake_org import rest_pages

HTML_PAGE = ("<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad "
             "Gateway</h1><p>The proxy server received an invalid response.</p></body></html>")
JSON = {"Content-Type": "application/json"}
HTML = {"Content-Type": "text/html"}


def sf_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Any:
    return status, {**JSON, **(headers or {})}, json.dumps(
        [{"message": message, "errorCode": code, "fields": []}])


def _opp_page(n: int) -> dict[str, Any]:
    return rest_pages()["Opportunity"][n - 1]


def sf_page(n: int, **over: Any) -> Any:
    """Opportunity page n as recorded, with some keys replaced."""
    return 200, JSON, json.dumps({**_opp_page(n), **over})


def reset() -> Exception:
    return requests.exceptions.ConnectionError(ConnectionResetError(104, "Connection reset by "
                                                                    "peer"))


def timeout() -> Exception:
    return requests.exceptions.ReadTimeout("HTTPSConnectionPool: Read timed out. (read "
                                           "timeout=120)")


def cut_body() -> Exception:
    return requests.exceptions.ChunkedEncodingError(
        "('Connection broken: IncompleteRead(120 bytes read, 880 more expected)')")


FIVE = 5  # the default attempts: a fault repeated this often is never recovered from

SALESFORCE: list[dict[str, Any]] = [
    {"id": "sf-timeout-once", "fault": "read timeout on the User query, once",
     "key": "User", "replies": [timeout], "expect": "recovers", "sleeps": [1.0]},
    {"id": "sf-timeout-always", "fault": "read timeout on every attempt (Opportunity page 1)",
     "key": "Opportunity", "replies": [timeout] * FIVE, "expect": "stops",
     "error": r"Opportunity query, page 1 .* failed after 5 attempts: ReadTimeout"},
    {"id": "sf-reset-once", "fault": "connection reset by peer on Opportunity page 2, once",
     "key": "page:Opportunity:2", "replies": [reset], "expect": "recovers", "sleeps": [1.0]},
    {"id": "sf-reset-always", "fault": "connection reset on every attempt (OpportunityHistory)",
     "key": "OpportunityHistory", "replies": [reset] * FIVE, "expect": "stops",
     "error": r"OpportunityHistory query, page 1 .* failed after 5 attempts: ConnectionError"},
    {"id": "sf-body-cut-once", "fault": "connection drops in the middle of the body "
     "(IncompleteRead), once", "key": "page:Opportunity:3", "replies": [cut_body],
     "expect": "recovers", "sleeps": [1.0]},
    {"id": "sf-body-cut-always", "fault": "connection drops in the middle of the body on every "
     "attempt", "key": "User", "replies": [cut_body] * FIVE, "expect": "stops",
     "error": r"User query, page 1 .* failed after 5 attempts: ChunkedEncodingError"},
    {"id": "sf-truncated-json", "fault": "200 whose JSON body itself is cut off half-way "
     "(page 2)",
     "key": "page:Opportunity:2",
     "replies": [(200, JSON, json.dumps(_opp_page(2))[:120])], "expect": "stops",
     "error": r"Opportunity query, page 2: the response is not valid JSON"},
    {"id": "sf-html-200", "fault": "200 with a proxy's HTML page instead of JSON",
     "key": "User", "replies": [(200, HTML, HTML_PAGE)], "expect": "stops",
     "error": r"User query, page 1: the response is not valid JSON"},
    {"id": "sf-html-502-once", "fault": "502 HTML page from a proxy, once",
     "key": "Opportunity", "replies": [(502, HTML, HTML_PAGE)], "expect": "recovers",
     "sleeps": [1.0]},
    {"id": "sf-html-502-always", "fault": "502 HTML page from a proxy on every attempt",
     "key": "Opportunity", "replies": [(502, HTML, HTML_PAGE)] * FIVE, "expect": "stops",
     "error": r"failed after 5 attempts: HTTP 502: an HTML page instead of an API response: "
              r"502 Bad Gateway$"},
    {"id": "sf-wrong-shape", "fault": "200 with valid JSON of the wrong shape (no records)",
     "key": "page:Opportunity:2", "replies": [(200, JSON, '{"status": "ok"}')],
     "expect": "stops", "error": r"page 2: unexpected response shape \(no 'records' list\)"},
    {"id": "sf-401", "fault": "401 INVALID_SESSION_ID (session expired, no login flow)",
     "key": "Opportunity",
     "replies": [sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")],
     "expect": "stops", "error": r"HTTP 401 INVALID_SESSION_ID.*session id has expired"},
    {"id": "sf-403", "fault": "403 INSUFFICIENT_ACCESS (no read access to the object)",
     "key": "OpportunityHistory",
     "replies": [sf_error(403, "INSUFFICIENT_ACCESS", "insufficient access rights")],
     "expect": "stops", "error": r"OpportunityHistory query, page 1 failed: HTTP 403 "
                                 r"INSUFFICIENT_ACCESS"},
    {"id": "sf-403-limit", "fault": "403 REQUEST_LIMIT_EXCEEDED on every attempt",
     "key": "Opportunity",
     "replies": [sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.",
                          {"Sforce-Limit-Info": "api-usage=15000/15000"})] * FIVE,
     "expect": "stops", "error": r"REQUEST_LIMIT_EXCEEDED.*used: 15000 of 15000"},
    {"id": "sf-404", "fault": "404 NOT_FOUND (query cursor gone)",
     "key": "page:Opportunity:3",
     "replies": [sf_error(404, "NOT_FOUND", "The requested resource does not exist")],
     "expect": "stops", "error": r"Opportunity query, page 3 failed: HTTP 404 NOT_FOUND"},
    {"id": "sf-429-once", "fault": "429 with Retry-After: 7, once",
     "key": "page:Opportunity:2", "replies": [(429, {**JSON, "Retry-After": "7"}, "[]")],
     "expect": "recovers", "sleeps": [7.0]},
    {"id": "sf-429-always", "fault": "429 on every attempt",
     "key": "User", "replies": [(429, JSON, "[]")] * FIVE, "expect": "stops",
     "error": r"User query, page 1 .* failed after 5 attempts: HTTP 429"},
    {"id": "sf-500-twice", "fault": "500 UNKNOWN_EXCEPTION twice, then success",
     "key": "OpportunityStage",
     "replies": [sf_error(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred")] * 2,
     "expect": "recovers", "sleeps": [1.0, 2.0]},
    {"id": "sf-503-always", "fault": "503 on every attempt",
     "key": "OpportunityHistory", "replies": [(503, HTML, "Service Unavailable")] * FIVE,
     "expect": "stops", "error": r"failed after 5 attempts: HTTP 503"},
    {"id": "sf-cursor-loop", "fault": "page 2 hands out its own nextRecordsUrl again",
     "key": "page:Opportunity:2",
     "replies": [sf_page(2, nextRecordsUrl=_opp_page(1)["nextRecordsUrl"])],
     "expect": "stops", "error": r"page 2: nextRecordsUrl repeats the cursor of page 1"},
    {"id": "sf-bad-limit-header", "fault": "page 2 carries a Sforce-Limit-Info header with a "
     "5000-digit number (the body is fine)", "key": "page:Opportunity:2",
     "replies": [(200, {**JSON, "Sforce-Limit-Info": "api-usage=" + "9" * 5000 + "/15000"},
                  sf_page(2)[2])], "expect": "recovers", "sleeps": []},
    {"id": "sf-empty-middle-page", "fault": "page 2 of 3 comes back with no records",
     "key": "page:Opportunity:2", "replies": [sf_page(2, records=[])], "expect": "stops",
     "error": r"page 2: an empty page that is not the last one"},
    {"id": "sf-bulk-job-failed", "fault": "Bulk 2.0 job ends in state Failed",
     "options": {"bulk": "always"}, "key": "state:Opportunity",
     "replies": [(200, JSON, json.dumps({"id": "7508d0000Job000AAA", "state": "Failed",
                                         "errorMessage": "InvalidBatch"}))],
     "expect": "stops", "error": r"Bulk 2.0 job \w+ Failed: InvalidBatch"},
    {"id": "sf-bulk-html-results", "fault": "Bulk 2.0 results page is a proxy's HTML page",
     "options": {"bulk": "always"}, "key": "results:Opportunity",
     "replies": [(200, {"Content-Type": "text/html", "Sforce-Locator": "null"}, HTML_PAGE)],
     "expect": "stops", "error": r"Bulk 2.0 results page 1 of job \w+ "},
    {"id": "sf-bulk-truncated-csv", "fault": "Bulk 2.0 results page cut short (fewer rows "
     "than Sforce-NumberOfRecords)", "options": {"bulk": "always"}, "key": "results:Opportunity",
     "replies": [(200, {"Content-Type": "text/csv", "Sforce-Locator": "1",
                        "Sforce-NumberOfRecords": "4"}, "Id,Name\n0068d00000OpA01AAA,x\n")],
     "expect": "stops", "error": r"announced 4 records but 1 could be read"},
    {"id": "sf-bulk-locator-loop", "fault": "Bulk 2.0 results page 2 repeats page 1's locator",
     "options": {"bulk": "always"}, "key": "results:Opportunity",
     "replies": ["results-page-0", (200, {"Content-Type": "text/csv", "Sforce-Locator": "1",
                                          "Sforce-NumberOfRecords": "1"},
                                    "Id,StageName\n0068d00000OpA09AAA,Prospecting\n")],
     "expect": "stops", "error": r"results page 2 of job \w+ repeats the locator of page 1"},
    {"id": "sf-bulk-empty-middle", "fault": "Bulk 2.0 results page 1 is empty but not the "
     "last", "options": {"bulk": "always"}, "key": "results:Opportunity",
     "replies": [(200, {"Content-Type": "text/csv", "Sforce-Locator": "1"}, "")],
     "expect": "stops", "error": r"results page 1 of job \w+ is empty but not the last one"},
    {"id": "sf-bulk-503-once", "fault": "Bulk 2.0 job poll answers 503 once",
     "options": {"bulk": "always"}, "key": "state:Opportunity",
     "replies": [(503, HTML, "Service Unavailable")], "expect": "recovers",
     "sleeps": [1.0, 2.0, 2.0]},  # the retry, then one poll wait per job
]

DEALS = "/crm/v3/objects/deals"
SEARCH = "/crm/v3/objects/deals/search"
PIPELINES = "/crm/v3/pipelines/deals"
OWNERS = "/crm/v3/owners/"


def _rl(policy: str) -> dict[str, Any]:
    return {"status": "error", "message": f"You have reached your {policy.lower()} limit.",
            "errorType": "RATE_LIMIT", "policyName": policy}


#: HubSpot: ``fail`` holds keyword arguments of FakeHubSpot.fail; ``options`` connector options
HUBSPOT: list[dict[str, Any]] = [
    {"id": "hs-timeout-once", "fault": "no answer within the 0.3 s timeout, once (deals list)",
     "options": {"timeout_s": 0.3}, "fail": {"path": DEALS, "status": 200, "delay_s": 1.0},
     "expect": "recovers", "sleeps": [1.0]},
    {"id": "hs-timeout-always", "fault": "no answer within the timeout on every attempt",
     "options": {"timeout_s": 0.3},
     "fail": {"path": PIPELINES, "status": 200, "delay_s": 0.8, "times": FIVE},
     "expect": "stops", "error": r"GET /crm/v3/pipelines/deals failed after 5 attempts: cannot "
                                 r"reach HubSpot .*timed out"},
    {"id": "hs-reset-once", "fault": "connection dropped without an answer, once (owners)",
     "fail": {"path": OWNERS, "status": None}, "expect": "recovers", "sleeps": [1.0]},
    {"id": "hs-reset-always", "fault": "connection dropped on every attempt (deals list)",
     "fail": {"path": DEALS, "status": None, "times": FIVE}, "expect": "stops",
     "error": r"GET /crm/v3/objects/deals failed after 5 attempts: cannot reach HubSpot"},
    {"id": "hs-truncated-once", "fault": "body cut off half-way (Content-Length not reached), "
     "once", "fail": {"path": PIPELINES, "status": 200, "body": {"results": []},
                      "truncate": True}, "expect": "recovers", "sleeps": [1.0]},
    {"id": "hs-truncated-always", "fault": "body cut off half-way on every attempt",
     "fail": {"path": DEALS, "status": 200, "body": {"results": []}, "truncate": True,
              "times": FIVE}, "expect": "stops",
     "error": r"GET /crm/v3/objects/deals failed after 5 attempts: cannot reach HubSpot"},
    {"id": "hs-html-200", "fault": "200 with a proxy's HTML page instead of JSON",
     "fail": {"path": DEALS, "status": 200, "raw": HTML_PAGE.encode(),
              "content_type": "text/html"},
     "expect": "stops", "error": r"GET /crm/v3/objects/deals: the response is not JSON"},
    {"id": "hs-html-502-once", "fault": "502 HTML page from a proxy, once",
     "fail": {"path": PIPELINES, "status": 502, "raw": HTML_PAGE.encode(),
              "content_type": "text/html"}, "expect": "recovers", "sleeps": [1.0]},
    {"id": "hs-html-502-always", "fault": "502 HTML page from a proxy on every attempt",
     "fail": {"path": OWNERS, "status": 502, "raw": HTML_PAGE.encode(),
              "content_type": "text/html", "times": FIVE}, "expect": "stops",
     "error": r"GET /crm/v3/owners/ failed after 5 attempts: HTTP 502 from HubSpot"},
    {"id": "hs-wrong-shape", "fault": "200 with valid JSON of the wrong shape (no results)",
     "fail": {"path": DEALS, "status": 200, "body": {"status": "ok"}}, "expect": "stops",
     "error": r"GET /crm/v3/objects/deals, page 1: unexpected response shape"},
    {"id": "hs-401", "fault": "401: token refused",
     "fail": {"path": PIPELINES, "status": 401,
              "body": {"status": "error", "message": "Authentication credentials not found."}},
     "expect": "stops", "error": r"401 unauthorized: the access token in environment variable "
                                 r"HUBSPOT_ACCESS_TOKEN was refused"},
    {"id": "hs-403", "fault": "403: the private app lacks a scope",
     "fail": {"path": OWNERS, "status": 403,
              "body": {"status": "error", "message": "This app hasn't been granted all "
                                                    "required scopes"}},
     "expect": "stops", "error": r"403 forbidden .*needs the scopes crm.objects.deals.read, "
                                 r"crm.objects.owners.read"},
    {"id": "hs-404", "fault": "404 on the deals list",
     "fail": {"path": DEALS, "status": 404, "body": {"status": "error", "message": "Not Found"}},
     "expect": "stops", "error": r"GET /crm/v3/objects/deals: HTTP 404: Not Found"},
    {"id": "hs-429-once", "fault": "429 TEN_SECONDLY_ROLLING with Retry-After: 3, once",
     "fail": {"path": DEALS, "status": 429, "body": _rl("TEN_SECONDLY_ROLLING"),
              "headers": {"Retry-After": "3"}}, "expect": "recovers", "sleeps": [3.0]},
    {"id": "hs-429-always", "fault": "429 TEN_SECONDLY_ROLLING on every attempt",
     "fail": {"path": DEALS, "status": 429, "body": _rl("TEN_SECONDLY_ROLLING"),
              "times": FIVE}, "expect": "stops",
     "error": r"failed after 5 attempts: rate limited \(429 TEN_SECONDLY_ROLLING\)"},
    {"id": "hs-429-daily", "fault": "429 DAILY limit", "fail": {
        "path": DEALS, "status": 429, "body": _rl("DAILY")}, "expect": "stops",
     "error": r"DAILY API limit is used up"},
    {"id": "hs-500-twice", "fault": "500 twice, then success",
     "fail": {"path": OWNERS, "status": 500, "times": 2}, "expect": "recovers",
     "sleeps": [1.0, 2.0]},
    {"id": "hs-503-always", "fault": "503 on every attempt",
     "fail": {"path": PIPELINES, "status": 503, "times": FIVE}, "expect": "stops",
     "error": r"failed after 5 attempts: HTTP 503 from HubSpot"},
    {"id": "hs-cursor-loop", "fault": "deals pages keep handing out the same `after` cursor",
     "options": {"page_size": 2},
     "fail": {"path": DEALS, "status": 200, "times": 3,
              "body": {"results": [{"id": "9001", "properties": {}}],
                       "paging": {"next": {"after": "2"}}}},
     "expect": "stops", "error": r"page 2: paging cursor '2' repeats the one of page 1"},
    {"id": "hs-empty-middle-page", "fault": "an empty deals page that points to a next page",
     "options": {"page_size": 2},
     "fail": {"path": DEALS, "status": 200,
              "body": {"results": [], "paging": {"next": {"after": "2"}}}},
     "expect": "stops", "error": r"page 1: an empty page that points to a next one"},
    {"id": "hs-search-cursor-loop", "fault": "incremental search answers the same full page "
     "whatever its cursor asks (a stale cache)",
     "since": True, "options": {"search_page_size": 2, "track_archived": False},
     "fail": {"path": SEARCH, "status": 200, "times": 3,
              "body": {"total": 2, "results": [
                  {"id": "9001", "properties": {"hs_lastmodifieddate": "2000-01-01T00:00:00Z"}},
                  {"id": "9002", "properties": {"hs_lastmodifieddate": "2000-01-01T00:00:00Z"}}]}},
     "expect": "stops",
     "error": r"POST /crm/v3/objects/deals/search, page 1: the results do not move past"},
]

#: SMTP: two manager recipients; ``server`` names the fake in test_fault_matrix.py
SMTP: list[dict[str, Any]] = [
    {"id": "smtp-connection-refused", "fault": "nothing listens on the port",
     "server": "none", "statuses": ["failed", "failed"],
     "error": r"could not connect to the SMTP server: ConnectionRefusedError"},
    {"id": "smtp-auth-failure", "fault": "the server refuses the login (535)",
     "server": "auth-fails", "statuses": ["failed", "failed"],
     "error": r"SMTPAuthenticationError: 535"},
    {"id": "smtp-recipient-refused", "fault": "the server refuses one recipient (550)",
     "server": "bounce", "statuses": ["sent", "failed"],
     "error": r"recipient refused: bounce@example.com: 550"},
    {"id": "smtp-timeout", "fault": "the server accepts the connection and never answers "
     "(timeout 0.5 s)", "server": "silent", "statuses": ["failed", "failed"],
     "error": r"could not connect to the SMTP server: .*timed out"},
    {"id": "smtp-starttls-missing", "fault": "security = starttls, the server offers no "
     "STARTTLS", "server": "plain-starttls", "statuses": ["failed", "failed"],
     "error": r"STARTTLS extension not supported by server"},
    {"id": "smtp-drop-after-greeting", "fault": "the server greets, then hangs up",
     "server": "hangup", "statuses": ["failed", "failed"],
     "error": r"SMTPServerDisconnected"},
    {"id": "smtp-data-rejected", "fault": "the server rejects one message's content (554)",
     "server": "reject-data", "statuses": ["failed", "sent"],
     "error": r"SMTPDataError: 554"},
]
