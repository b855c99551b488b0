"""Live Salesforce connector: ``[source] type = "salesforce"``.

Pull order: stage metadata (1 call, also yields the API usage used for the budget floor), one
``describe`` of Opportunity (field-level security: only readable fields are selected), owners,
opportunities (the Opportunity stream, :mod:`.streams`), opportunity history. Each object is one
flat SOQL query, paged at up to 2,000 records per REST call, or a Bulk API 2.0 job for large
orgs. API cost of a full REST pull::

    1 (OpportunityStage) + 1 (describe) + ceil(users / 2000) + ceil(opportunities / 2000)
    + ceil(history / 2000)

An incremental pull costs the same with the changed records' counts (at least one call per
object), plus 1 call to the ``deleted`` resource, plus ``ceil(opportunities / 2000)`` ids-only
calls when reconciliation is due (see docs/connectors/salesforce.md). ``bulk = "auto"`` adds one
wasted first page per object it switches to Bulk 2.0.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from auditor.errors import ConnectorError
from auditor.snapshot import Snapshot
from auditor.stages import StageMap
from connectors.base import Connector, SourceOptions
from connectors.salesforce.bulk import bulk_query_frames
from connectors.salesforce.fields import (
    HISTORY_FIELDS,
    OPPORTUNITY_EXTRA_FIELDS,
    STAGE_FIELDS,
    opportunity_specs,
    select_list,
    user_specs,
)
from connectors.salesforce.normalise import (
    PullFacts,
    RawOrg,
    build_snapshot,
    flatten_records,
    stage_metadata_report,
)
from connectors.salesforce.streams import (
    DELETED_RESOURCE_DAYS,
    RECYCLE_BIN_DAYS,
    OpportunityReads,
    Readable,
    opportunity_stream,
    permission_hint,
    readable_from_describe,
    soql_datetime,
)
from connectors.salesforce.streams import where as _where
from connectors.salesforce.transport import (
    SalesforceOptions,
    SalesforceTransport,
    read_credentials,
)
from connectors.streams import PriorPull, ReconcilePolicy, Stream, StreamState

log = logging.getLogger(__name__)


class SalesforceConnector(Connector):
    type_name: ClassVar[str] = "salesforce"
    Options: ClassVar[type[SourceOptions]] = SalesforceOptions
    options: SalesforceOptions

    def __init__(self, options: SourceOptions, *, base_dir: Path = Path("."),
                 env: Mapping[str, str] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__(options, base_dir=base_dir, env=env)
        self.sleep = sleep
        self._now = now

    # -- public -----------------------------------------------------------------------------

    def check(self) -> dict[str, Any]:
        """Log in, read the stage metadata and describe Opportunity; report unmapped stages,
        fields the integration user cannot read, and API usage."""
        t = self._connect()
        stages = self._query_frame(t, "OpportunityStage", list(STAGE_FIELDS))
        unmapped, warnings = stage_metadata_report(stages, self._stage_map())
        _, unreadable = opportunity_stream(
            opportunity_specs(self.options), list(OPPORTUNITY_EXTRA_FIELDS),
            self._describe(t, "Opportunity"))
        remaining = t.remaining_api_calls()
        return {
            "instance_url": t.instance_url,
            "stages": int(len(stages)),
            "unmapped_stages": unmapped,
            "unreadable_fields": unreadable,
            "warnings": warnings,
            "api_calls": t.counter.api_calls,
            "api_usage": t.counter.as_meta().to_dict(),
            "api_remaining": remaining[0] if remaining else None,
        }

    def pull(self, since: datetime | None = None) -> Snapshot:
        opts = self.options
        t = self._connect()
        stages = self._query_frame(t, "OpportunityStage", list(STAGE_FIELDS))
        warnings = self._check_budget(t)
        readable = self._describe(t, "Opportunity")
        spec, unreadable = opportunity_stream(
            opportunity_specs(opts), [*OPPORTUNITY_EXTRA_FIELDS, "SystemModstamp"], readable)
        for column, sf_field in unreadable.items():
            warnings.append(
                f"field {sf_field} is not readable by the integration user: {column} is not "
                f"audited; {permission_hint('Opportunity', sf_field)} (if the field does not "
                "exist, check its name in the config)")

        users = self._users(t, warnings)
        paths: dict[str, str] = {}
        reads = OpportunityReads(t, spec, opts.opportunity_filter, partial(self._pull_object, t),
                                 paths)
        stream: Stream[pd.DataFrame] = Stream(
            spec, reads, lookback=timedelta(0),
            policy=ReconcilePolicy(opts.reconcile_every_days, RECYCLE_BIN_DAYS),
            removed_window=timedelta(days=DELETED_RESOURCE_DAYS),
            keys=lambda frames: set(pd.concat(frames)["Id"].dropna().astype(str)))
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        prior = self.prior if since is not None else None
        if since is not None and prior is None:  # called without the run (no stored ids)
            prior = PriorPull(since, frozenset(), since, StreamState(since, self._now()))
        result = stream.pull(prior, self._now())
        opps = reads.key_frame(result.records)

        history = None
        if opts.include_history:
            scope = (f"OpportunityId IN (SELECT Id FROM Opportunity"
                     f"{_where(opts.opportunity_filter)})" if opts.opportunity_filter else None)
            since_cond = (f"SystemModstamp > {soql_datetime(prior.state.bookmark or prior.since)}"
                          if prior else None)
            history = self._pull_object(t, "OpportunityHistory", list(HISTORY_FIELDS),
                                        _where(scope, since_cond), paths)

        facts = PullFacts(
            source=self.source_name, source_type=self.type_name, instance_url=t.instance_url,
            api_calls=t.counter.api_calls, api_usage=t.counter.as_meta(),
            incremental=result.incremental, warnings=warnings,
            extra={"instance_url": t.instance_url, "api_paths": paths,
                   "since": since.isoformat() if since else None,
                   "reconciled": result.reconciled, "deleted_by": result.deleted_by},
            unreadable_fields=unreadable, stream_state=result.state.to_meta(),
        )
        raw = RawOrg(opportunities=opps, users=users, history=history, stages=stages,
                     deleted_ids=result.deleted_ids)
        snap = build_snapshot(raw, opts, facts)
        log.info("Salesforce pull: %d opportunities, %d stage entries, %d removed, %d API calls",
                 len(snap.opportunities), len(snap.stage_history), len(result.deleted_ids),
                 facts.api_calls)
        return snap

    # -- steps ------------------------------------------------------------------------------

    def _connect(self) -> SalesforceTransport:
        creds = read_credentials(self.options, self.env, self.base_dir)
        return SalesforceTransport(self.options, creds, sleep=self.sleep)

    def _stage_map(self) -> StageMap:
        return StageMap.build("salesforce", self.options.stage_map, name="source.stage_map")

    def _users(self, t: SalesforceTransport, warnings: list[str]) -> pd.DataFrame:
        """The owners; a hidden ``team_field`` costs one refused query, not the pull."""
        opts = self.options
        fields = [s.sf_field for s in user_specs(opts)]
        try:
            return self._query_frame(t, "User", fields, _where(opts.owner_filter))
        except ConnectorError as exc:
            team = opts.team_field
            if not team or not re.search(
                    rf"INVALID_FIELD.*'{re.escape(team.split('.')[0])}'", str(exc), re.DOTALL):
                raise
        warnings.append(
            f"field User.{team} is not readable by the integration user: owners' team is not "
            f"read; {permission_hint('User', team)}")
        return self._query_frame(t, "User", [f for f in fields if f != team],
                                 _where(opts.owner_filter))

    def _describe(self, t: SalesforceTransport, obj: str) -> Readable:
        """One describe per object and run: the fields this user can read (field-level
        security hides the others from describe and makes SOQL naming them fail)."""
        body = t.call(f"{obj} describe", lambda: getattr(t.sf, obj).describe())
        return readable_from_describe(body, obj)

    def _check_budget(self, t: SalesforceTransport) -> list[str]:
        floor = self.options.min_remaining_api_calls
        remaining = t.remaining_api_calls()
        if remaining is None:
            return ["Salesforce reported no API usage; the budget floor was not checked"]
        left, total = remaining
        if left < floor:
            raise ConnectorError(
                f"Salesforce org has {left} of {total} daily API requests left, below "
                f"source.min_remaining_api_calls = {floor}: not pulling. Try again after the "
                f"24-hour window rolls over, or lower the floor."
            )
        return []

    def _query_frame(self, t: SalesforceTransport, obj: str, fields: list[str],
                     where: str = "") -> pd.DataFrame:
        soql = f"SELECT {select_list(fields)} FROM {obj}{where}"
        frames = [flatten_records(recs, list(dict.fromkeys(fields)))
                  for recs, _ in t.query_pages(soql, f"{obj} query")]
        t.counter.records_read[obj] += sum(map(len, frames))
        return pd.concat(frames, ignore_index=True)

    def _pull_object(self, t: SalesforceTransport, obj: str, fields: list[str], where: str,
                     paths: dict[str, str], *, include_deleted: bool = False) -> pd.DataFrame:
        """All records of one object, by REST pages or a Bulk 2.0 job."""
        opts = self.options
        fields = list(dict.fromkeys(fields))
        soql = f"SELECT {select_list(fields)} FROM {obj}{where}"
        if opts.bulk != "always":
            frames = []
            for records, total in t.query_pages(soql, f"{obj} query",
                                                include_deleted=include_deleted):
                t.counter.records_read[obj] += len(records)
                if not frames and opts.bulk == "auto" and total > opts.bulk_threshold:
                    log.info("%s: %d records > bulk_threshold %d: using Bulk API 2.0",
                             obj, total, opts.bulk_threshold)
                    break
                frames.append(flatten_records(records, fields))
                self.progress(obj, sum(map(len, frames)), len(frames), t.counter.api_calls, total)
            else:
                paths[obj] = "rest"
                return pd.concat(frames, ignore_index=True)
        paths[obj] = "bulk"
        frames = []
        for f in bulk_query_frames(t, soql, f"{obj} query", include_deleted=include_deleted):
            frames.append(f.reindex(columns=fields))
            t.counter.records_read[obj] += len(f)
            self.progress(obj, sum(map(len, frames)), len(frames), t.counter.api_calls)
        if not frames:
            return pd.DataFrame({f: pd.Series(dtype=object) for f in fields})
        return pd.concat(frames, ignore_index=True)
