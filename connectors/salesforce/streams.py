"""Salesforce streams as declarations, and the reads the stream base runs on the transport.

The Opportunity stream: primary key ``Id``, replication key ``SystemModstamp``, the fields of
:func:`.fields.opportunity_specs` that the integration user can read (field-level security,
from one ``describe`` per run). Deletions on every incremental pull: ``IsDeleted`` rows from
``queryAll`` (the Recycle Bin, 15 days) plus ``GET /sobjects/Opportunity/deleted/`` for the
window (records purged from the Recycle Bin; 30 days back at most); an ids-only query
(``SELECT Id``, 2,000 ids per call) reconciles the stored ids on the stream's schedule.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from auditor.errors import ConnectorError
from connectors.salesforce.fields import FieldSpec
from connectors.salesforce.transport import SalesforceTransport
from connectors.streams import StreamSpec

#: Opportunity fields the pull cannot do without; field-level security cannot hide most of
#: them, but a restricted profile or a custom field can
REQUIRED_OPPORTUNITY_FIELDS = frozenset({"Id", "StageName", "SystemModstamp"})
#: the Recycle Bin keeps deleted records 15 days; the deleted resource reaches 30 days back
RECYCLE_BIN_DAYS = 15
DELETED_RESOURCE_DAYS = 30


def soql_datetime(when: datetime) -> str:
    """A SOQL datetime literal (UTC, no quotes); naive datetimes are taken as UTC."""
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def where(*conditions: str | None) -> str:
    parts = [f"({c})" for c in conditions if c]
    return f" WHERE {' AND '.join(parts)}" if parts else ""


@dataclass(frozen=True)
class Readable:
    """What ``describe`` says the integration user can read on one object."""

    fields: frozenset[str]
    #: relationship name → the reference field (``Account`` → ``AccountId``)
    relationships: dict[str, str]

    def can_read(self, name: str) -> bool:
        if "." in name:  # Account.Name: readable when the reference field is
            return name.split(".", 1)[0] in self.relationships
        return name in self.fields


def readable_from_describe(body: Any, obj: str) -> Readable:
    fields = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(fields, list):
        raise ConnectorError(f"Salesforce describe of {obj}: no `fields` list in the response")
    names = frozenset(str(f["name"]) for f in fields if isinstance(f, dict) and f.get("name"))
    rel = {str(f["relationshipName"]): str(f["name"]) for f in fields
           if isinstance(f, dict) and f.get("relationshipName")}
    return Readable(names, rel)


def permission_hint(obj: str, name: str) -> str:
    return (f"grant the integration user Read access to {obj}.{name} (Setup → Object Manager → "
            f"{obj} → Fields & Relationships → {name} → Set Field-Level Security, or a "
            "permission set with Read on the field)")


def opportunity_stream(specs: list[FieldSpec], extra: list[str],
                       readable: Readable) -> tuple[StreamSpec, dict[str, str]]:
    """The Opportunity declaration for this run, and the unreadable optional fields
    (Snapshot column → field). An unreadable required field is a clear error."""
    unreadable: dict[str, str] = {}
    fields: list[str] = []
    for s in specs:
        if readable.can_read(s.sf_field):
            fields.append(s.sf_field)
        elif s.sf_field in REQUIRED_OPPORTUNITY_FIELDS:
            raise ConnectorError(
                f"Salesforce: the integration user cannot read the required field "
                f"Opportunity.{s.sf_field}; {permission_hint('Opportunity', s.sf_field)}")
        else:
            unreadable[s.column] = s.sf_field
    fields += [f for f in extra if readable.can_read(f)]
    for req in sorted(REQUIRED_OPPORTUNITY_FIELDS - set(fields)):
        if not readable.can_read(req):
            raise ConnectorError(
                f"Salesforce: the integration user cannot read the required field "
                f"Opportunity.{req}; {permission_hint('Opportunity', req)}")
        fields.append(req)
    spec = StreamSpec("Opportunity", "Id", "SystemModstamp", tuple(dict.fromkeys(fields)),
                      REQUIRED_OPPORTUNITY_FIELDS)
    return spec, unreadable


@dataclass
class OpportunityReads:
    """The four stream reads on the Salesforce transport (REST pages or Bulk 2.0)."""

    t: SalesforceTransport
    spec: StreamSpec
    opportunity_filter: str | None
    #: runs one SOQL query by REST pages or Bulk 2.0; returns a frame of the given fields
    query: Callable[..., pd.DataFrame]
    paths: dict[str, str] = field(default_factory=dict)

    def read_all(self) -> list[pd.DataFrame]:
        return [self.query("Opportunity", list(self.spec.fields), where(self.opportunity_filter),
                           self.paths)]

    def read_changed(self, since: datetime, until: datetime) -> tuple[list[pd.DataFrame],
                                                                     list[str]]:
        # queryAll: rows deleted since then come back with IsDeleted = true (Recycle Bin)
        fields = [*self.spec.fields, "IsDeleted"]
        cond = f"SystemModstamp > {soql_datetime(since)}"
        frame = self.query("Opportunity", fields, where(self.opportunity_filter, cond),
                           self.paths, include_deleted=True)
        from connectors.salesforce.normalise import parse_column

        gone = parse_column(frame["IsDeleted"], "bool").fillna(False).astype(bool)
        deleted = parse_column(frame.loc[gone, "Id"], "id").dropna().tolist()
        live = frame[~gone].drop(columns="IsDeleted")
        return [live], deleted

    def read_removed(self, since: datetime, until: datetime) -> tuple[list[str], datetime]:
        """``GET /sobjects/Opportunity/deleted/?start=&end=`` (one call, 30 days back at most);
        the next window starts at ``latestDateCovered`` (whole minutes, may lag the end)."""
        start = max(since, until - timedelta(days=DELETED_RESOURCE_DAYS) + timedelta(minutes=1))
        body = self.t.call("Opportunity deleted records",
                           lambda: self.t.sf.Opportunity.deleted(start.astimezone(UTC),
                                                                  until.astimezone(UTC)))
        recs = body.get("deletedRecords") if isinstance(body, dict) else None
        if not isinstance(recs, list):
            raise ConnectorError("Salesforce Opportunity deleted records: no `deletedRecords` "
                                 "list in the response")
        covered = until
        raw = body.get("latestDateCovered")
        if raw:
            with contextlib.suppress(ValueError):
                covered = min(until, datetime.strptime(str(raw), "%Y-%m-%dT%H:%M:%S.%f%z"))
        return [str(r["id"]) for r in recs if isinstance(r, dict) and r.get("id")], covered

    def read_ids(self) -> set[str]:
        """``SELECT Id FROM Opportunity``: ids only, 2,000 per call."""
        soql = f"SELECT Id FROM Opportunity{where(self.opportunity_filter)}"
        out: set[str] = set()
        for records, _ in self.t.query_pages(soql, "Opportunity id reconciliation"):
            out.update(str(r["Id"]) for r in records if r.get("Id"))
        return out

    def key_frame(self, frames: list[pd.DataFrame]) -> pd.DataFrame:
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
            {f: pd.Series(dtype=object) for f in self.spec.fields})
