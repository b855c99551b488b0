"""Live Salesforce connector: ``[source] type = "salesforce"``.

Pull order: stage metadata (1 call, also yields the API usage used for the budget floor), owners,
opportunities, opportunity history. Each object is one flat SOQL query, paged at up to 2,000
records per REST call, or a Bulk API 2.0 job for large orgs. API cost of a full REST pull::

    1 (OpportunityStage) + ceil(users / 2000) + ceil(opportunities / 2000) + ceil(history / 2000)

plus one wasted first page per object that ``bulk = "auto"`` switches to Bulk 2.0.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
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
from connectors.salesforce.normalize import (
    PullFacts,
    RawOrg,
    build_snapshot,
    flatten_records,
    parse_column,
    stage_metadata_report,
)
from connectors.salesforce.transport import (
    SalesforceOptions,
    SalesforceTransport,
    read_credentials,
)

log = logging.getLogger(__name__)


def soql_datetime(when: datetime) -> str:
    """A SOQL datetime literal (UTC, no quotes); naive datetimes are taken as UTC."""
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _where(*conditions: str | None) -> str:
    parts = [f"({c})" for c in conditions if c]
    return f" WHERE {' AND '.join(parts)}" if parts else ""


class SalesforceConnector(Connector):
    type_name: ClassVar[str] = "salesforce"
    Options: ClassVar[type[SourceOptions]] = SalesforceOptions
    options: SalesforceOptions

    def __init__(self, options: SourceOptions, *, base_dir: Path = Path("."),
                 env: Mapping[str, str] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(options, base_dir=base_dir, env=env)
        self.sleep = sleep

    # -- public -----------------------------------------------------------------------------

    def check(self) -> dict[str, Any]:
        """Log in, read the stage metadata; report unmapped stages and API usage."""
        t = self._connect()
        stages = self._query_frame(t, "OpportunityStage", list(STAGE_FIELDS))
        unmapped, warnings = stage_metadata_report(stages, self._stage_map())
        remaining = t.remaining_api_calls()
        return {
            "instance_url": t.instance_url,
            "stages": int(len(stages)),
            "unmapped_stages": unmapped,
            "warnings": warnings,
            "api_calls": t.counter.api_calls,
            "api_usage": t.counter.as_meta(),
            "api_remaining": remaining[0] if remaining else None,
        }

    def pull(self, since: datetime | None = None) -> Snapshot:
        opts = self.options
        t = self._connect()
        stages = self._query_frame(t, "OpportunityStage", list(STAGE_FIELDS))
        warnings = self._check_budget(t)

        users = self._query_frame(t, "User", [s.sf_field for s in user_specs(opts)],
                                  _where(opts.owner_filter))
        since_cond = f"SystemModstamp > {soql_datetime(since)}" if since else None
        opp_fields = [s.sf_field for s in opportunity_specs(opts)] + [
            *OPPORTUNITY_EXTRA_FIELDS, "SystemModstamp"]
        if opts.include_deleted:
            opp_fields.append("IsDeleted")
        paths: dict[str, str] = {}
        opps = self._pull_object(t, "Opportunity", opp_fields,
                                 _where(opts.opportunity_filter, since_cond), paths,
                                 include_deleted=opts.include_deleted)
        deleted: list[str] = []
        if opts.include_deleted:
            gone = parse_column(opps["IsDeleted"], "bool").fillna(False).astype(bool)
            deleted = parse_column(opps.loc[gone, "Id"], "id").dropna().tolist()
            opps = opps[~gone].drop(columns="IsDeleted").reset_index(drop=True)

        history = None
        if opts.include_history:
            scope = (f"OpportunityId IN (SELECT Id FROM Opportunity"
                     f"{_where(opts.opportunity_filter)})" if opts.opportunity_filter else None)
            history = self._pull_object(t, "OpportunityHistory", list(HISTORY_FIELDS),
                                        _where(scope, since_cond), paths)

        facts = PullFacts(
            source=self.source_name, source_type=self.type_name, instance_url=t.instance_url,
            api_calls=t.counter.api_calls, api_usage=t.counter.as_meta(),
            incremental=since is not None, warnings=warnings,
            extra={"instance_url": t.instance_url, "api_paths": paths,
                   "since": since.isoformat() if since else None},
        )
        raw = RawOrg(opportunities=opps, users=users, history=history, stages=stages,
                     deleted_ids=deleted)
        snap = build_snapshot(raw, opts, facts)
        log.info("Salesforce pull: %d opportunities, %d stage entries, %d API calls",
                 len(snap.opportunities), len(snap.stage_history), facts.api_calls)
        return snap

    # -- steps ------------------------------------------------------------------------------

    def _connect(self) -> SalesforceTransport:
        creds = read_credentials(self.options, self.env, self.base_dir)
        return SalesforceTransport(self.options, creds, sleep=self.sleep)

    def _stage_map(self) -> StageMap:
        return StageMap.build("salesforce", self.options.stage_map, name="source.stage_map")

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
            self.progress(obj, sum(map(len, frames)), len(frames), t.counter.api_calls)
        if not frames:
            return pd.DataFrame({f: pd.Series(dtype=object) for f in fields})
        return pd.concat(frames, ignore_index=True)
