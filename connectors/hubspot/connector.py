"""HubSpot CRM API connector: pipelines, owners and deals → Snapshot.

API cost of a full pull of N deals (O active owners, A archived owners), one property pass:
``max(1, ceil(N/100))`` list calls (``ceil(N/50)`` with ``stage_history = "full"``) + 1
pipelines call + ``max(1, ceil(O/100)) + max(1, ceil(A/100))`` owner pages (+ 1 account-info
call when ``portal_id`` or ``portal_timezone`` is not configured). Each extra property pass
(very long property lists, see ``max_url_length``) adds ``max(1, ceil(N/100))``. Retries count.
See docs/connectors/hubspot.md.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from auditor.errors import ConnectorError, SourceDataError
from auditor.secrets import read_secret
from auditor.snapshot import STR, Snapshot, make_owners
from auditor.stages import StageMap
from connectors.base import Connector
from connectors.hubspot.fields import DATE_ENTERED_PREFIX, HISTORY_PROPERTIES
from connectors.hubspot.normalise import PullContext, RawDeals, normalise
from connectors.hubspot.options import HubSpotOptions
from connectors.hubspot.pipelines import catalogue_from_pipelines, map_catalogue
from connectors.hubspot.transport import HubSpotTransport, UriTooLong
from connectors.retrying import RetryPolicy

log = logging.getLogger(__name__)

Record = dict[str, Any]
PIPELINES = "GET /crm/v3/pipelines/deals"


class HubSpotConnector(Connector):
    type_name: ClassVar[str] = "hubspot"
    Options: ClassVar[type[HubSpotOptions]] = HubSpotOptions  # type: ignore[assignment]
    options: HubSpotOptions

    def __init__(
        self,
        options: HubSpotOptions,
        *,
        base_dir: Path = Path("."),
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(options, base_dir=base_dir, env=env)
        self._sleep, self._clock, self._now = sleep, clock, now

    # -- public ------------------------------------------------------------------------------
    def transport(self) -> HubSpotTransport:
        o = self.options
        token = read_secret(o.access_token_env, "source.access_token_env", self.env)
        return HubSpotTransport(
            token, host=o.host, token_env=o.access_token_env,
            policy=RetryPolicy(o.retry_attempts, o.retry_base_delay_s, o.retry_max_delay_s),
            timeout_s=o.timeout_s, search_min_interval_s=o.search_min_interval_s,
            sleep=self._sleep, clock=self._clock,
        )

    def pull(self, since: datetime | None = None) -> Snapshot:
        o = self.options
        t = self.transport()
        stage_map = StageMap.build("hubspot", o.stage_map, name="source.stage_map")
        cat = map_catalogue(catalogue_from_pipelines(t.get_pipelines(), PIPELINES), stage_map)
        ctx = PullContext(source=self.source_name, source_type=self.type_name,
                          portal_id=o.portal_id, portal_tz=o.portal_timezone or "UTC",
                          incremental=since is not None)
        if o.portal_id is None or o.portal_timezone is None:
            self._account_info(t, ctx)
        owners = self._owners(t)
        full = o.stage_history == "full"
        props = [*o.properties(), *(DATE_ENTERED_PREFIX + s for s in cat["stage_id"])]
        hist = list(HISTORY_PROPERTIES) if full else []
        if since is None:
            records = self._list_all(t, props, hist)
        else:
            records = self._search_since(t, props, since)
            if full:
                records = self._add_history(t, records, hist)
            if o.track_archived:
                ctx.deleted_ids = list(self._archived_since(t, since))
        raw = raw_from_records(records)
        ctx.api_calls = t.calls
        ctx.api_usage = {**t.usage, "calls_by_endpoint": dict(t.calls_by_endpoint)}
        ctx.extra["reached_stages_by_pipeline"] = reached_by_pipeline(cat)
        return normalise(raw, cat, owners, o, stage_map, ctx, full_history=full)

    def check(self) -> dict[str, Any]:
        t = self.transport()
        stage_map = StageMap.build("hubspot", self.options.stage_map, name="source.stage_map")
        cat = map_catalogue(catalogue_from_pipelines(t.get_pipelines(), PIPELINES), stage_map)
        t.list_owners(after=None, archived=False)
        unmapped = cat[cat["common"].isna()]
        return {
            "pipelines": int(cat["pipeline_id"].nunique()),
            "stages": len(cat),
            "unmapped_stages": [f"{r.stage_label} (id {r.stage_id}, pipeline {r.pipeline_label})"
                                for r in unmapped.itertuples()],
            "api_calls": t.calls,
            "api_usage": dict(t.usage),
        }

    # -- metadata ----------------------------------------------------------------------------
    def _account_info(self, t: HubSpotTransport, ctx: PullContext) -> None:
        info = t.account_info()
        if ctx.portal_id is None:
            pid = info.get("portalId")
            if pid is None:
                raise ConnectorError("HubSpot GET /account-info/v3/details: no `portalId` in the "
                                     "response; set source.portal_id")
            ctx.portal_id = int(pid)
        if self.options.portal_timezone is None:
            tz = str(info.get("timeZone") or "")
            try:
                ZoneInfo(tz)
                ctx.portal_tz = tz
            except (ZoneInfoNotFoundError, ValueError):
                ctx.warnings.append(f"portal time zone {tz!r} from account info is unknown; "
                                    "using UTC (set source.portal_timezone)")

    def _owners(self, t: HubSpotTransport) -> pd.DataFrame:
        rows: list[Record] = []
        for archived in (False, True):
            after: str | None = None
            pages = _Pages("GET /crm/v3/owners/" + ("?archived=true" if archived else ""))
            while True:
                page = t.list_owners(after=after, archived=archived)
                rows += [{**r, "archived": archived or bool(r.get("archived"))}
                         for r in pages.results(page)]
                after = pages.next_after(page)
                if after is None:
                    break
        return owners_frame(rows)

    # -- full pull ---------------------------------------------------------------------------
    def _chunks(self, props: list[str], hist: list[str]) -> list[list[str]]:
        """Split the property list so no request URL exceeds ``max_url_length``."""
        base = len(self.options.host) + len("/crm/v3/objects/deals?limit=100&after=") + 24
        base += sum(len("&propertiesWithHistory=") + len(quote(h)) for h in hist)
        chunks: list[list[str]] = [[]]
        size = base
        for p in props:
            cost = len("&properties=") + len(quote(p))
            if chunks[-1] and size + cost > self.options.max_url_length:
                chunks.append([])
                size = base
            chunks[-1].append(p)
            size += cost
        return chunks

    def _list_all(self, t: HubSpotTransport, props: list[str], hist: list[str]) -> list[Record]:
        queue = deque(self._chunks(props, hist))
        merged: dict[str, Record] = {}
        with_history = bool(hist)
        while queue:
            chunk = queue.popleft()
            try:
                records = self._list_pass(t, chunk, hist if with_history else [])
            except UriTooLong:
                if len(chunk) < 2:
                    raise ConnectorError(
                        f"HubSpot GET /crm/v3/objects/deals: 414 URI too long even with the "
                        f"single property {chunk[0]!r}; lower source.max_url_length") from None
                mid = len(chunk) // 2
                queue.extendleft([chunk[mid:], chunk[:mid]])
                log.info("property list too long for one URL (HTTP 414); split into %d and %d",
                         mid, len(chunk) - mid)
                continue
            with_history = False  # history rides along with the first pass only
            _merge(merged, records)
        return list(merged.values())

    def _list_pass(self, t: HubSpotTransport, props: list[str], hist: list[str]) -> list[Record]:
        limit = min(self.options.page_size, 50) if hist else self.options.page_size
        out: list[Record] = []
        after: str | None = None
        pages = _Pages("GET /crm/v3/objects/deals")
        while True:
            page = t.list_deals(limit=limit, after=after, properties=props,
                                properties_with_history=hist or None)
            out += [r for r in pages.results(page) if not r.get("archived")]
            after = pages.next_after(page)
            if after is None:
                return out

    # -- incremental -------------------------------------------------------------------------
    def _search_since(self, t: HubSpotTransport, props: list[str], since: datetime) -> list[Record]:
        """Deals modified in [since, now), in time slices each under the search result cap."""
        o = self.options
        if since.tzinfo is None:
            raise ConnectorError("incremental pull: `since` must be timezone-aware")
        windows = deque([(_ms(since), _ms(self._now()))])
        found: dict[str, Record] = {}
        slices = 0
        while windows:
            lo, hi = windows.popleft()
            body = _search_body(lo, hi, props, min(o.search_page_size, o.search_result_cap))
            page = t.search_deals(body)
            total = int(page.get("total", 0))
            if total > o.search_result_cap:
                if hi - lo <= 1:
                    raise ConnectorError(
                        f"HubSpot search: {total} deals modified within one millisecond "
                        f"({lo}); cannot slice under the {o.search_result_cap}-result cap")
                mid = lo + (hi - lo) // 2
                windows.extendleft([(mid, hi), (lo, mid)])
                continue
            slices += 1
            pages = _Pages("POST /crm/v3/objects/deals/search")
            results = list(pages.results(page))
            after = pages.next_after(page)
            while after is not None:
                page = t.search_deals({**body, "after": after})
                results += pages.results(page)
                after = pages.next_after(page)
            for r in results:  # a deal modified during the pull may show in two slices
                found[str(r["id"])] = r
        log.info("incremental search: %d deals in %d time slices", len(found), slices)
        return list(found.values())

    def _add_history(self, t: HubSpotTransport, records: list[Record],
                     hist: list[str]) -> list[Record]:
        """Search cannot return property history: batch-read it, 50 deals per call."""
        ids = [str(r["id"]) for r in records]
        extra: list[Record] = []
        for i in range(0, len(ids), 50):
            body = {"properties": [], "propertiesWithHistory": hist,
                    "inputs": [{"id": x} for x in ids[i:i + 50]]}
            extra += _Pages("POST /crm/v3/objects/deals/batch/read").results(
                t.batch_read_deals(body))
        by_id = {str(r["id"]): r.get("propertiesWithHistory", {}) for r in extra}
        return [{**r, "propertiesWithHistory": by_id.get(str(r["id"]), {})} for r in records]

    def _archived_since(self, t: HubSpotTransport, since: datetime) -> list[str]:
        out: list[str] = []
        after: str | None = None
        pages = _Pages("GET /crm/v3/objects/deals?archived=true")
        while True:
            page = t.list_deals(limit=100, after=after, properties=["hs_object_id"], archived=True)
            out += [str(r["id"]) for r in pages.results(page)
                    if _archived_at(r) is not None and _archived_at(r) >= since]
            after = pages.next_after(page)
            if after is None:
                return sorted(out, key=lambda x: (len(x), x))


# -- helpers shared with tests and the export connector ---------------------------------------
def raw_from_records(records: list[Record]) -> RawDeals:
    """API records (``id``, ``properties``, ``propertiesWithHistory``) → RawDeals."""
    if any("id" not in r for r in records):
        raise SourceDataError("HubSpot deals: a record without `id`")
    props = pd.DataFrame.from_records([r.get("properties") or {} for r in records])
    props.insert(0, "id", pd.Series([str(r["id"]) for r in records], dtype=STR))
    props = props.astype({c: STR for c in props.columns})
    # from_records makes a column for every key any record has: the properties returned
    present = frozenset(props.columns) - {"id"}
    rows = [
        {"deal_id": str(r["id"]), "property": prop, "value": v.get("value"),
         "timestamp": v.get("timestamp")}
        for r in records
        for prop, versions in (r.get("propertiesWithHistory") or {}).items()
        for v in versions or []
    ]
    history = pd.DataFrame(rows, columns=["deal_id", "property", "value", "timestamp"])
    return RawDeals(props=props, present=present, history=history)


def owners_frame(rows: list[Record]) -> pd.DataFrame:
    """``/crm/v3/owners/`` results (archived → inactive) → the owners frame."""
    def team(teams: Any) -> Any:
        teams = teams or []
        primary = [x for x in teams if x.get("primary")] or teams
        return primary[0].get("name") if primary else None

    df = pd.DataFrame([{
        "id": str(r["id"]),
        "name": " ".join(x for x in (r.get("firstName"), r.get("lastName")) if x) or None,
        "email": r.get("email"),
        "active": not r.get("archived", False),
        "team": team(r.get("teams")),
    } for r in rows], columns=["id", "name", "email", "active", "team"])
    df = df.drop_duplicates("id", keep="first")  # active listing first
    df = df.assign(_n=df["id"].str.len()).sort_values(["_n", "id"]).drop(columns="_n")
    return make_owners(df)


def reached_by_pipeline(cat: pd.DataFrame) -> dict[str, list[str]]:
    """Common stages each pipeline reaches (per-pipeline skipped-stage checks)."""
    out: dict[str, list[str]] = {}
    for label, grp in cat.groupby("pipeline_label", sort=True):
        stages = grp["common"].dropna()
        out[str(label)] = [str(s) for s in stages.cat.categories if s in set(stages.astype(str))]
    return out


def _merge(merged: dict[str, Record], records: list[Record]) -> None:
    for r in records:
        cur = merged.setdefault(str(r["id"]), {"id": str(r["id"]), "properties": {}})
        cur["properties"].update(r.get("properties") or {})
        if r.get("propertiesWithHistory"):
            cur["propertiesWithHistory"] = r["propertiesWithHistory"]


class _Pages:
    """Checks one paged listing: every page has a results list, and a cursor is never repeated
    nor handed out by an empty page (either would mean looping or silently missing records)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.page = 0
        self.seen: dict[str, int] = {}

    def results(self, page: Record) -> list[Record]:
        self.page += 1
        results = page.get("results")
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            raise ConnectorError(
                f"HubSpot {self.what}, page {self.page}: unexpected response shape (no "
                "`results` list of records); stopped without passing on a partial pull")
        return results

    def next_after(self, page: Record) -> str | None:
        after = _next_after(page)
        if after is None:
            return None
        if not page.get("results"):
            raise ConnectorError(
                f"HubSpot {self.what}, page {self.page}: an empty page that points to a next "
                "one; stopped without passing on a partial pull")
        if after in self.seen:
            raise ConnectorError(
                f"HubSpot {self.what}, page {self.page}: paging cursor {after!r} repeats the one "
                f"of page {self.seen[after]}; stopped rather than page in a loop")
        self.seen[after] = self.page
        return after


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


def _search_body(lo: int, hi: int, props: list[str], limit: int) -> Record:
    return {
        "filterGroups": [{"filters": [
            {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(lo)},
            {"propertyName": "hs_lastmodifieddate", "operator": "LT", "value": str(hi)},
        ]}],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": props,
        "limit": limit,
    }
