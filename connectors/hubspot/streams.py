"""The HubSpot deals stream: its declaration and the reads the stream base runs.

Incremental pulls search ``hs_lastmodifieddate`` from the bookmark minus the lookback, paged by
the modification time itself and then by deal id (never by offset); archived deals and, on the
stream's schedule, an id reconciliation give the deletions. The full pull (list API, property
passes) stays in :mod:`.connector`; the mapping in :mod:`.normalise`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from auditor.errors import ConnectorError
from connectors.hubspot.options import HubSpotOptions
from connectors.hubspot.transport import HubSpotTransport
from connectors.streams import Pages, StreamSpec

log = logging.getLogger(__name__)
Record = dict[str, Any]


#: the deals stream, declared: HubSpot's deal id, modification time as the replication key;
#: the properties come from the options (fields.py) and the pipelines' stage ids
DEALS_STREAM = StreamSpec("deals", "id", "hs_lastmodifieddate", (), frozenset({"dealstage"}))
#: archived deals can be restored for 90 days, then they leave the archived listing
ARCHIVE_DAYS = 90


class DealReads:
    """The stream reads on the HubSpot transport."""

    def __init__(self, t: HubSpotTransport, o: HubSpotOptions, props: list[str],
                 hist: list[str], read_all: Callable[[], list[Record]]) -> None:
        self.t, self.o, self.props, self.hist = t, o, props, hist
        self._read_all = read_all

    def read_all(self) -> list[Record]:
        return self._read_all()

    def read_changed(self, since: datetime, until: datetime) -> tuple[list[Record], list[str]]:
        records = search_since(self.t, self.o, self.props, since, until)
        if self.hist:
            records = add_history(self.t, records, self.hist)
        return records, []

    def read_removed(self, since: datetime, until: datetime) -> tuple[list[str], datetime]:
        if not self.o.track_archived:
            return [], until
        return archived_between(self.t, since, until), until

    def read_ids(self) -> set[str]:
        return all_ids(self.t)


def search_since(t: HubSpotTransport, o: HubSpotOptions, props: list[str], since: datetime,
                 until: datetime) -> list[Record]:
    """Deals modified at or after ``since``, paged by the modification time itself.

    Each request asks for ``hs_lastmodifieddate >= cursor`` sorted ascending and starts at
    offset 0, so no request pages past the 10,000-result cap, and a deal edited while the
    pages are read only moves *later* (it is read again there) instead of shifting the
    offsets of the others and making one of them skip. The cursor moves to the last time on
    a full page (deals at that time are read again: ties across pages are kept); a full
    page all at one time is paged by ``hs_object_id`` (the stable tie-break). Stops at a
    page that is not full, or once past ``until`` (deals edited during the pull).
    """
    limit = min(o.search_page_size, o.search_result_cap)
    found: dict[str, Record] = {}
    lo = _ms(since)
    pages = HubSpotPages("POST /crm/v3/objects/deals/search")
    while True:
        results = pages.results(t.search_deals(_search_body(
            [_f("hs_lastmodifieddate", "GTE", lo)], "hs_lastmodifieddate", props, limit)))
        for r in results:  # a later read of the same deal is the newer version
            found[str(r["id"])] = r
        if len(results) < limit:
            break
        top = max(_modified_ms(r, pages) for r in results)
        if top < lo:
            raise _stuck(pages, f"modified {top} before the cursor {lo}")
        if top == lo:  # a whole page at one time: page that time by id
            _search_tie(t, props, lo, limit, found, pages)
            lo += 1
        else:
            lo = top
        if lo > _ms(until):
            break
    log.info("incremental search: %d deals in %d search calls", len(found), pages.page)
    return list(found.values())

def _search_tie(t: HubSpotTransport, props: list[str], at: int, limit: int,
                found: dict[str, Record], pages: HubSpotPages) -> None:
    last: int | None = None
    while True:
        filters = [_f("hs_lastmodifieddate", "EQ", at)]
        if last is not None:
            filters.append(_f("hs_object_id", "GT", last))
        results = pages.results(t.search_deals(
            _search_body(filters, "hs_object_id", props, limit)))
        for r in results:
            found[str(r["id"])] = r
        if len(results) < limit:
            return
        top = max(int(str(r["id"])) for r in results)
        if last is not None and top <= last:
            raise _stuck(pages, f"deal ids do not move past {last}")
        last = top

def add_history(t: HubSpotTransport, records: list[Record],
                 hist: list[str]) -> list[Record]:
    """Search cannot return property history: batch-read it, 50 deals per call."""
    ids = [str(r["id"]) for r in records]
    extra: list[Record] = []
    for i in range(0, len(ids), 50):
        body = {"properties": [], "propertiesWithHistory": hist,
                "inputs": [{"id": x} for x in ids[i:i + 50]]}
        extra += HubSpotPages("POST /crm/v3/objects/deals/batch/read").results(
            t.batch_read_deals(body))
    by_id = {str(r["id"]): r.get("propertiesWithHistory", {}) for r in extra}
    return [{**r, "propertiesWithHistory": by_id.get(str(r["id"]), {})} for r in records]

def archived_between(t: HubSpotTransport, since: datetime,
                      until: datetime) -> list[str]:
    out: list[str] = []
    after: str | None = None
    pages = HubSpotPages("GET /crm/v3/objects/deals?archived=true")
    while True:
        page = t.list_deals(limit=100, after=after, properties=["hs_object_id"], archived=True)
        out += [str(r["id"]) for r in pages.results(page)
                if (at := _archived_at(r)) is not None and since <= at <= until]
        after = pages.next_after(page)
        if after is None:
            return sorted(out, key=lambda x: (len(x), x))

def all_ids(t: HubSpotTransport) -> set[str]:
    """Every live deal id: the list API with one property, 100 per call."""
    out: set[str] = set()
    after: str | None = None
    pages = HubSpotPages("GET /crm/v3/objects/deals (id reconciliation)")
    while True:
        page = t.list_deals(limit=100, after=after, properties=["hs_object_id"])
        out.update(str(r["id"]) for r in pages.results(page) if not r.get("archived"))
        after = pages.next_after(page)
        if after is None:
            return out


class HubSpotPages(Pages):
    """HubSpot's paged listings (``results`` + ``paging.next.after``), checked by the stream
    base's :class:`~connectors.streams.Pages`."""

    def __init__(self, what: str) -> None:
        super().__init__(what, "HubSpot", "`results` list of records")

    def results(self, page: Record) -> list[Record]:
        return self.records(page.get("results"))

    def next_after(self, page: Record) -> str | None:
        return self.next(_next_after(page), page.get("results") or [])


def _next_after(page: Record) -> str | None:
    nxt = (page.get("paging") or {}).get("next") or {}
    after = nxt.get("after")
    return str(after) if after not in (None, "") else None


def _ms(dt: datetime) -> int:
    return int(math.floor(dt.timestamp() * 1000))


def _archived_at(r: Record) -> datetime | None:
    v = r.get("archivedAt")
    if not v:
        return None
    return datetime.fromisoformat(str(v).replace("Z", "+00:00"))


def _f(prop: str, op: str, value: int) -> Record:
    return {"propertyName": prop, "operator": op, "value": str(value)}


def _search_body(filters: list[Record], sort: str, props: list[str], limit: int) -> Record:
    return {
        "filterGroups": [{"filters": filters}],
        "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
        "properties": props,
        "limit": limit,
    }


def _modified_ms(r: Record, pages: HubSpotPages) -> int:
    v = (r.get("properties") or {}).get("hs_lastmodifieddate") or r.get("updatedAt")
    try:
        if str(v).isdigit():
            return int(str(v))
        return _ms(datetime.fromisoformat(str(v).replace("Z", "+00:00")))
    except ValueError:
        raise ConnectorError(
            f"HubSpot {pages.what}, page {pages.page}: deal {r.get('id')} has no readable "
            f"hs_lastmodifieddate ({v!r}); cannot page by modification time") from None


def _stuck(pages: HubSpotPages, why: str) -> ConnectorError:
    return ConnectorError(
        f"HubSpot {pages.what}, page {pages.page}: the results do not move past the cursor "
        f"({why}); stopped rather than page in a loop")
