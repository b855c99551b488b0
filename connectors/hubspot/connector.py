"""HubSpot CRM API connector: pipelines, owners and deals → Snapshot.

API cost of a full pull of N deals (O active owners, A archived owners), one property pass:
``max(1, ceil(N/100))`` list calls (``ceil(N/50)`` with ``stage_history = "full"``) + 1
pipelines call + ``max(1, ceil(O/100)) + max(1, ceil(A/100))`` owner pages (+ 1 account-info
call when ``portal_id`` or ``portal_timezone`` is not configured). Each extra property pass
(very long property lists, see ``max_url_length``) adds ``max(1, ceil(N/100))``. Retries count.
Incremental pulls run the deals stream (:mod:`.streams`: search from the bookmark minus the
lookback, archived deals, id reconciliation). See docs/connectors/hubspot.md.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
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
from connectors.hubspot.streams import (
    ARCHIVE_DAYS,
    DEALS_STREAM,
    DealReads,
)
from connectors.hubspot.streams import HubSpotPages as _Pages
from connectors.hubspot.transport import HubSpotTransport, UriTooLong
from connectors.retrying import RetryPolicy
from connectors.streams import (
    PriorPull,
    ReconcilePolicy,
    Stream,
    StreamState,
)

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
        if since is not None and since.tzinfo is None:
            raise ConnectorError("incremental pull: `since` must be timezone-aware")
        prior = self.prior if since is not None else None
        if since is not None and prior is None:  # called without the run (no stored ids)
            prior = PriorPull(since, frozenset(), since, StreamState(since, since, since))
        stream: Stream[Record] = Stream(
            replace(DEALS_STREAM, fields=tuple(props)),
            DealReads(t, o, props, hist, lambda: self._list_all(t, props, hist)),
            lookback=timedelta(seconds=o.lookback_s),
            policy=ReconcilePolicy(o.reconcile_every_days),
            removed_window=timedelta(days=ARCHIVE_DAYS))
        result = stream.pull(prior, self._now())
        raw = raw_from_records(result.records)
        ctx.api_calls = t.calls
        ctx.api_usage = t.api_usage()
        ctx.extra["reached_stages_by_pipeline"] = reached_by_pipeline(cat)
        ctx.extra.update(reconciled=result.reconciled, deleted_by=result.deleted_by)
        ctx.deleted_ids, ctx.stream_state = result.deleted_ids, result.state.to_meta()
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
            "api_usage": t.api_usage().to_dict(),
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
            self.progress("deals", len(out), pages.page, t.calls)
            after = pages.next_after(page)
            if after is None:
                return out

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


