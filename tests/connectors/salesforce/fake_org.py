"""A fake Salesforce org on ``responses``: REST query pages, Bulk 2.0 jobs, logins, faults.

Payloads come from ``data/`` (see make_fixtures.py). The fake serves them exactly as recorded
and can put failures in front of any page.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import responses

DATA = Path(__file__).parent / "data"
HOST = "acme.my.salesforce.com"
INSTANCE_URL = f"https://{HOST}"
BASE = f"{INSTANCE_URL}/services/data/v59.0"
LIMIT = "api-usage=1200/15000"
#: a reply, or an exception the "network" raises (timeouts, resets)
Reply = tuple[int, dict[str, str], str] | Exception

#: the org-specific options the fixtures were made for
FIELD_OPTIONS: dict[str, Any] = {
    "loss_reason_field": "Loss_Reason__c",
    "next_step_due_field": "Next_Step_Date__c",
    "team_field": "Department",
    "custom_fields": {"budget": "Budget__c"},
    "currency": "USD",
}
SESSION_ENV = {"SF_SESSION": "00Dxx0000001gPL!AQ4AQFakeSessionToken"}


def rest_pages() -> dict[str, list[dict[str, Any]]]:
    return {p.stem: json.loads(p.read_text()) for p in (DATA / "rest").glob("*.json")}


def bulk_pages() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in sorted((DATA / "bulk").glob("*.csv")):
        out.setdefault(p.stem.rsplit("_", 1)[0], []).append(p.read_text())
    return out


def login_reply(name: str) -> str:
    return (DATA / "login" / name).read_text()


def sf_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps([{"message": message, "errorCode": code, "fields": []}])
    return status, {"Content-Type": "application/json", **(headers or {})}, body


class FakeOrg:
    """Serves recorded pages; ``fail(key, *replies)`` answers ``key``'s next calls with faults."""

    def __init__(
        self,
        rsps: responses.RequestsMock,
        pages: dict[str, list[dict[str, Any]]] | None = None,
        bulk: dict[str, list[str]] | None = None,
        limit_info: str = LIMIT,
    ) -> None:
        self.rsps = rsps
        self.pages = rest_pages() if pages is None else pages
        self.bulk = bulk_pages() if bulk is None else bulk
        self.limit_info = limit_info
        self.faults: dict[str, list[Reply]] = {}
        self.soql: list[str] = []
        self.jobs: list[dict[str, Any]] = []
        self._more = {}
        for body_list in self.pages.values():
            for a, b in zip(body_list, body_list[1:], strict=False):
                self._more[a["nextRecordsUrl"]] = b
        query = re.compile(re.escape(BASE) + r"/query(All)?/.*")
        rsps.add_callback(responses.GET, query, callback=self._query)
        rsps.add_callback(responses.POST, f"{BASE}/jobs/query", callback=self._create_job)
        rsps.add_callback(
            responses.GET,
            re.compile(re.escape(BASE) + r"/jobs/query/\w+$"),
            callback=self._job_state,
        )
        rsps.add_callback(
            responses.GET,
            re.compile(re.escape(BASE) + r"/jobs/query/\w+/results.*"),
            callback=self._results,
        )
        self._polls: dict[str, int] = {}
        self._job_obj: dict[str, str] = {}
        #: Sforce-NumberOfRecords to announce instead of the page's real count
        self.bulk_counts: dict[str, int] = {}

    def fail(self, key: str, *replies: Reply) -> None:
        """key: an object name (its first page), a nextRecordsUrl, "job:<Object>" (job
        creation), "state:<Object>" (job polls) or "results:<Object>" (result pages)."""
        self.faults.setdefault(key, []).extend(replies)

    def page_key(self, obj: str, n: int) -> str:
        return obj if n == 1 else self.pages[obj][n - 2]["nextRecordsUrl"]

    def _fault(self, key: str) -> Reply | None:
        queue = self.faults.get(key)
        reply = queue.pop(0) if queue else None
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _ok(
        self, body: Any, content_type: str = "application/json", extra: dict[str, str] | None = None
    ) -> Reply:
        headers = {
            "Content-Type": content_type,
            "Sforce-Limit-Info": self.limit_info,
            **(extra or {}),
        }
        return 200, headers, body if isinstance(body, str) else json.dumps(body)

    def _query(self, request: Any) -> Reply:
        url = urlparse(request.url)
        if url.path.rstrip("/").endswith(("/query", "/queryAll")):
            soql = parse_qs(url.query)["q"][0]
            self.soql.append(soql)
            key = re.search(r"\bFROM\s+(\w+)", soql).group(1)
            return self._fault(key) or self._ok(self.pages[key][0])
        return self._fault(url.path) or self._ok(self._more[url.path])

    def _create_job(self, request: Any) -> Reply:
        body = json.loads(request.body)
        obj = re.search(r"\bFROM\s+(\w+)", body["query"]).group(1)
        self.jobs.append(body)
        fault = self._fault(f"job:{obj}")
        if fault:
            return fault
        job_id = f"7508d0000Job{len(self.jobs) - 1:03d}AAA"
        self._job_obj[job_id] = obj
        return self._ok(
            {
                "id": job_id,
                "operation": body["operation"],
                "object": obj,
                "state": "UploadComplete",
                "concurrencyMode": "Parallel",
                "contentType": "CSV",
                "apiVersion": 59.0,
                "lineEnding": "LF",
                "columnDelimiter": "COMMA",
            }
        )

    def _obj(self, job_id: str) -> str:
        return self._job_obj[job_id]

    def _job_state(self, request: Any) -> Reply:
        job_id = urlparse(request.url).path.rsplit("/", 1)[1]
        fault = self._fault(f"state:{self._obj(job_id)}")
        if fault:
            return fault
        self._polls[job_id] = self._polls.get(job_id, 0) + 1
        state = "InProgress" if self._polls[job_id] == 1 else "JobComplete"
        return self._ok(
            {
                "id": job_id,
                "operation": "query",
                "object": self._obj(job_id),
                "state": state,
                "numberRecordsProcessed": 0,
            }
        )

    def _results(self, request: Any) -> Reply:
        url = urlparse(request.url)
        job_id = url.path.split("/")[-2]
        fault = self._fault(f"results:{self._obj(job_id)}")
        if fault:
            return fault
        pages = self.bulk[self._obj(job_id)]
        locator = parse_qs(url.query).get("locator", ["0"])[0]
        i = int(locator)
        nxt = str(i + 1) if i + 1 < len(pages) else "null"
        n = self.bulk_counts.get(self._obj(job_id), pages[i].count("\n") - 1)
        return self._ok(
            pages[i], "text/csv", {"Sforce-Locator": nxt, "Sforce-NumberOfRecords": str(n)}
        )
