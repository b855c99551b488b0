"""A local fake HubSpot API (http.server on 127.0.0.1, port 0, in a thread).

Serves the documented JSON shapes from the deals in ``data/``: deals list (paged with
``paging.next.after``, properties filtered to those requested and defined in the portal,
``propertiesWithHistory`` limited to 50 per page), search, batch read, pipelines, owners
(active / archived) and account info. Every request is recorded so tests can count calls and
check paths and query strings; faults can be queued.

Search behaves like HubSpot's, not like a recording: it evaluates the filter groups it receives
(OR of AND-ed filters: EQ, NEQ, GT, GTE, LT, LTE), honours one sort (ties come back in no
particular order: here, highest id first), pages by offset (``after``) up to the 10,000-result
cap, and sees the index, which lags behind writes: ``edit`` / ``add`` change the deal at once
(list, batch read) but make the change searchable only ``search_lag_ms`` later on the fake's
clock. ``on_search`` runs before each search answer, so a test can edit deals during paging.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

DATA = Path(__file__).parent / "data"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]
    url_length: int
    status: int = 0
    response: Any = None


@dataclass
class Fault:
    path: str
    status: int | None  # None: drop the connection without an answer
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    method: str | None = None
    truncate: bool = False  # announce a body, send half of it, hang up
    raw: bytes | None = None  # send these bytes as the body instead of JSON (e.g. a proxy page)
    content_type: str = "application/json;charset=utf-8"
    delay_s: float = 0.0  # wait before answering (client timeouts)


def rate_limit_body(policy: str) -> dict[str, Any]:
    return {"status": "error", "message": f"You have reached your {policy.lower()} limit.",
            "errorType": "RATE_LIMIT", "correlationId": "c0ffee", "policyName": policy}


class FakeHubSpot:
    def __init__(self, *, token: str = "pat-test-token", pipelines: str = "pipelines.json",
                 deals: str = "deals.json") -> None:
        self.token = token
        self.pipelines = json.loads((DATA / pipelines).read_text())
        store = json.loads((DATA / deals).read_text())
        self.deals: list[dict[str, Any]] = store["deals"]
        self.archived_deals: list[dict[str, Any]] = store.get("archived_deals", [])
        self.defined_properties: set[str] = set(store["portal_properties"])
        owners = json.loads((DATA / "owners.json").read_text())
        self.owners: list[dict[str, Any]] = owners["active"]
        self.archived_owners: list[dict[str, Any]] = owners["archived"]
        self.account = json.loads((DATA / "account.json").read_text())
        self.requests: list[Recorded] = []
        self.faults: deque[Fault] = deque()
        self.search_cap = 10_000
        #: the fake's clock (ms since the epoch) and how long a write takes to reach search
        self.clock: Any = lambda: int(time.time() * 1000)
        self.search_lag_ms = 0
        self.on_search: Any = None
        self._pending: list[tuple[int, dict[str, Any]]] = []
        self._index: dict[str, dict[str, Any]] | None = None
        self.max_url_length: int | None = None
        self.response_headers: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> FakeHubSpot:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                fake._handle(self, "POST")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # a short poll: shutdown() waits up to one poll interval (0.5 s by default, paid by
        # every test that starts this server)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def host(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- test helpers ------------------------------------------------------------------------
    def fail(self, path: str, status: int | None, body: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None, times: int = 1,
             method: str | None = None, truncate: bool = False, raw: bytes | None = None,
             content_type: str = "application/json;charset=utf-8",
             delay_s: float = 0.0) -> None:
        for _ in range(times):
            self.faults.append(Fault(path, status, body, headers or {}, method, truncate, raw,
                                     content_type, delay_s))

    def calls(self, path: str | None = None, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests
                if (path is None or r.path == path) and (method is None or r.method == method)]

    def portal_properties(self) -> set[str]:
        stage_ids = [s["id"] for p in self.pipelines["results"] for s in p["stages"]]
        return self.defined_properties | {f"hs_v2_date_entered_{i}" for i in stage_ids}

    # -- dispatch ----------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        rec = Recorded(method, parts.path, parse_qs(parts.query), body,
                       {k.lower(): v for k, v in h.headers.items()}, len(h.path))
        with self._lock:
            self.requests.append(rec)
            fault = None
            if self.faults and self.faults[0].path == parts.path and (
                    self.faults[0].method in (None, method)):
                fault = self.faults.popleft()
        if fault is not None:
            if fault.delay_s:
                time.sleep(fault.delay_s)
            if fault.status is None:
                h.close_connection = True
                h.connection.close()
                return
            rec.status = fault.status
            if fault.truncate:
                data = json.dumps(fault.body or {}).encode()
                h.send_response(fault.status)
                h.send_header("Content-Length", str(len(data) * 2))
                h.end_headers()
                h.wfile.write(data)
                h.close_connection = True
                return
            if fault.raw is not None:
                h.send_response(fault.status)
                h.send_header("Content-Type", fault.content_type)
                h.send_header("Content-Length", str(len(fault.raw)))
                for k, v in fault.headers.items():
                    h.send_header(k, v)
                h.end_headers()
                h.wfile.write(fault.raw)
                return
            self._send(h, fault.status, fault.body or {"status": "error", "message": "fault"},
                       fault.headers)
            return
        if h.headers.get("Authorization") != f"Bearer {self.token}":
            rec.status = 401
            self._send(h, 401, {"status": "error", "category": "INVALID_AUTHENTICATION",
                                "message": "Authentication credentials not found."})
            return
        if self.max_url_length is not None and len(h.path) > self.max_url_length:
            rec.status = 414
            self._send(h, 414, {"status": "error", "message": "URI Too Long"})
            return
        try:
            status, payload = self._route(method, parts.path, rec.query, body)
        except KeyError as exc:
            status, payload = 400, {"status": "error", "message": f"bad request: {exc}"}
        rec.status, rec.response = status, payload
        self._send(h, status, payload)

    def _send(self, h: BaseHTTPRequestHandler, status: int, payload: dict[str, Any],
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json;charset=utf-8")
        h.send_header("Content-Length", str(len(data)))
        for k, v in {**self.response_headers, **(headers or {})}.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _route(self, method: str, path: str, q: dict[str, list[str]],
               body: Any) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path == "/crm/v3/objects/deals":
            return self._list_deals(q)
        if method == "POST" and path == "/crm/v3/objects/deals/search":
            return self._search(body)
        if method == "POST" and path == "/crm/v3/objects/deals/batch/read":
            return self._batch_read(body)
        if method == "GET" and path == "/crm/v3/pipelines/deals":
            return 200, self.pipelines
        if method == "GET" and path in ("/crm/v3/owners/", "/crm/v3/owners"):
            archived = q.get("archived", ["false"])[0].lower() == "true"
            items = self.archived_owners if archived else self.owners
            return 200, self._page(items, q, max_limit=500)
        if method == "GET" and path == "/account-info/v3/details":
            return 200, self.account
        return 404, {"status": "error", "message": f"no route {method} {path}"}

    # -- endpoints ---------------------------------------------------------------------------
    def _render(self, deal: dict[str, Any], props: list[str], hist: list[str]) -> dict[str, Any]:
        defined = self.portal_properties()
        out = {
            "id": deal["id"],
            "properties": {p: deal["properties"].get(p) for p in props if p in defined},
            "createdAt": deal["properties"].get("createdate"),
            "updatedAt": deal["properties"].get("hs_lastmodifieddate"),
            "archived": bool(deal.get("archived", False)),
        }
        if deal.get("archivedAt"):
            out["archivedAt"] = deal["archivedAt"]
        if hist:
            history = deal.get("propertiesWithHistory", {})
            out["propertiesWithHistory"] = {
                p: copy.deepcopy(history.get(p, [])) for p in hist if p in defined}
        return out

    @staticmethod
    def _page(items: list[dict[str, Any]], q: dict[str, list[str]], max_limit: int,
              render: Any = None) -> dict[str, Any]:
        limit = int(q.get("limit", ["10"])[0])
        if limit > max_limit:
            raise KeyError(f"limit {limit} > {max_limit}")
        start = int(q.get("after", ["0"])[0])
        chunk = items[start:start + limit]
        out: dict[str, Any] = {"results": [render(i) if render else i for i in chunk]}
        if start + limit < len(items):
            nxt = str(start + limit)
            out["paging"] = {"next": {"after": nxt, "link": f"https://api.hubapi.com/x?after={nxt}"}}
        return out

    def _list_deals(self, q: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        if "archived" in q and q["archived"][0].lower() not in ("true", "false"):
            return 400, {"status": "error", "message": "archived must be true or false"}
        archived = q.get("archived", ["false"])[0].lower() == "true"
        props = q.get("properties", [])
        hist = q.get("propertiesWithHistory", [])
        max_limit = 50 if hist else 100
        items = self.archived_deals if archived else self.deals
        return 200, self._page(items, q, max_limit, lambda d: self._render(d, props, hist))

    def _search(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.on_search is not None:
            self.on_search(self)
        limit = int(body.get("limit", 10))
        if limit > 200:
            return 400, {"status": "error", "message": "limit must be <= 200"}
        start = int(body.get("after") or 0)
        if start >= self.search_cap:
            return 400, {"status": "error", "message": "paging past the result cap"}
        indexed = self._search_index()
        groups = body.get("filterGroups") or [{"filters": []}]
        for g in groups:
            for f in g.get("filters", []):
                if f["operator"] not in _OPS:
                    return 400, {"status": "error", "message": f"bad operator {f['operator']}"}
        hits = [d for d in indexed if any(all(_match(d, f) for f in g.get("filters", []))
                                          for g in groups)]
        hits.sort(key=lambda d: -int(d["id"]))  # ties: no promised order (here: id descending)
        sorts = body.get("sorts") or []
        if sorts:  # HubSpot applies one sorting rule
            prop, desc = sorts[0]["propertyName"], sorts[0].get("direction") == "DESCENDING"
            hits.sort(key=lambda d: _sort_value(d, prop), reverse=desc)
        props = body.get("properties", [])
        out: dict[str, Any] = {"total": len(hits), "results": [
            self._render(d, props, []) for d in hits[start:start + limit]]}
        if start + limit < len(hits) and start + limit < self.search_cap:
            out["paging"] = {"next": {"after": str(start + limit)}}
        return 200, out

    # -- writes by the "users" of the portal (test helpers) ---------------------------------
    def now_ms(self) -> int:
        return self.clock()

    def edit(self, deal_id: str, **props: str) -> None:
        """A user saves the deal now: hs_lastmodifieddate moves; search sees it after the lag."""
        self._search_index()  # what was written before is indexed
        now = self.now_ms()
        for d in self.deals:
            if d["id"] == deal_id:
                d["properties"].update(props, hs_lastmodifieddate=_iso(now))
                self._pending.append((now + self.search_lag_ms, copy.deepcopy(d)))

    def add(self, deal: dict[str, Any]) -> None:
        self._search_index()
        now = self.now_ms()
        deal["properties"].setdefault("hs_lastmodifieddate", _iso(now))
        self.deals.append(deal)
        self._pending.append((now + self.search_lag_ms, copy.deepcopy(deal)))

    def archive(self, deal_id: str) -> None:
        """A user archives (deletes) the deal now: it leaves lists and search."""
        deal = next(d for d in self.deals if d["id"] == deal_id)
        self.deals.remove(deal)
        self.archived_deals.append({**deal, "archived": True, "archivedAt": _iso(self.now_ms())})

    def _search_index(self) -> list[dict[str, Any]]:
        """What search sees now: the last indexed version of each deal."""
        now = self.now_ms()
        if self._index is None:  # everything written before the test started is indexed
            self._index = {d["id"]: copy.deepcopy(d) for d in self.deals}
        due = [p for p in self._pending if p[0] <= now]
        self._pending = [p for p in self._pending if p[0] > now]
        for _, d in sorted(due, key=lambda p: p[0]):
            self._index[d["id"]] = d
        live = {d["id"] for d in self.deals}
        return [d for i, d in self._index.items() if i in live]

    def _batch_read(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        hist = body.get("propertiesWithHistory") or []
        if len(body["inputs"]) > (50 if hist else 100):
            return 400, {"status": "error", "message": "too many inputs"}
        by_id = {d["id"]: d for d in self.deals}
        results = [self._render(by_id[i["id"]], body.get("properties", []), hist)
                   for i in body["inputs"] if i["id"] in by_id]
        return 200, {"status": "COMPLETE", "results": results}


def _ms(deal: dict[str, Any]) -> int:
    value = deal["properties"]["hs_lastmodifieddate"]
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{ms % 1000:03d}Z"


_OPS = {"EQ", "NEQ", "GT", "GTE", "LT", "LTE"}


def _sort_value(deal: dict[str, Any], prop: str) -> Any:
    if prop == "hs_lastmodifieddate":
        return _ms(deal)
    if prop == "hs_object_id":
        return int(deal["id"])
    return str(deal["properties"].get(prop) or "")


def _match(deal: dict[str, Any], f: dict[str, Any]) -> bool:
    prop, op = f["propertyName"], f["operator"]
    have = _sort_value(deal, prop)
    want: Any = f.get("value")
    if prop in ("hs_lastmodifieddate", "hs_object_id"):
        want = int(want) if str(want).isdigit() else _ms({"properties": {prop: want}})
    return {"EQ": have == want, "NEQ": have != want, "GT": have > want, "GTE": have >= want,
            "LT": have < want, "LTE": have <= want}[op]
