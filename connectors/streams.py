"""Connector streams: incremental state, deletions, reconciliation and paging, in one place.

A CRM connector declares its objects as :class:`StreamSpec` (object, primary key, replication
key, fields) and implements four reads on its transport (:class:`StreamReads`); the
:class:`Stream` here decides which reads a pull needs and owns what every API source must get
right the same way:

- **incremental state**: the bookmark (replication-key value the next pull starts from, moved
  back by the stream's lookback) and when the stored ids were last reconciled; kept in
  ``SnapshotMeta.stream_state`` and handed back on the next pull (:class:`PriorPull`);
- **deletions**: ids the change feed marks as removed (Salesforce ``IsDeleted``, HubSpot
  archived), ids the source lists as removed in the window (Salesforce's ``deleted`` resource),
  and, on the reconciliation schedule, stored ids the source no longer returns. All of them end
  up in ``SnapshotMeta.deleted_ids``, the one field the merge reads;
- **paging**: :class:`Pages` checks every cursor-paged listing the same way — HubSpot lists and
  search, Salesforce REST query pages and Bulk 2.0 result pages (a repeated cursor or an empty
  page that points further means looping or missing records: stop, never pass on a partial
  pull). Retries (:mod:`connectors.retrying`, one policy for both) and call counting sit in each
  transport's one HTTP session, because only the session sees every attempt (retries and
  logins included); the stream reports what they counted.

Nothing here maps fields: see each connector's ``fields`` / ``normalise`` modules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Generic, Protocol, TypeVar

from auditor.errors import ConnectorError

log = logging.getLogger(__name__)
R = TypeVar("R")


@dataclass(frozen=True)
class StreamSpec:
    """One source object as a declaration (after singer-sdk's streams)."""

    #: the object as the API names it ("Opportunity", "deals")
    name: str
    primary_key: str
    #: the field incremental pulls filter on ("SystemModstamp", "hs_lastmodifieddate")
    replication_key: str
    #: fields to read (the connector's field mapping decides what they become)
    fields: tuple[str, ...]
    #: fields without which the pull is refused (never silently audited without them)
    required: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StreamState:
    """What a stream remembers between pulls (stored with the snapshot)."""

    #: replication-key value the next incremental pull starts from (before the lookback)
    bookmark: datetime | None = None
    #: when the stored ids were last checked against the source (a full pull counts)
    reconciled_at: datetime | None = None
    #: up to when the source's list of removed records was read (Salesforce answers with
    #: ``latestDateCovered``, which can lag behind the request's end)
    removed_until: datetime | None = None

    def to_meta(self) -> dict[str, str]:
        return {k: v.isoformat() for k, v in (("bookmark", self.bookmark),
                                               ("reconciled_at", self.reconciled_at),
                                               ("removed_until", self.removed_until)) if v}

    @classmethod
    def from_meta(cls, d: dict[str, str] | None) -> StreamState:
        d = d or {}

        def ts(key: str) -> datetime | None:
            try:
                return datetime.fromisoformat(d[key]) if d.get(key) else None
            except ValueError:
                return None

        return cls(bookmark=ts("bookmark"), reconciled_at=ts("reconciled_at"),
                   removed_until=ts("removed_until"))


@dataclass(frozen=True)
class PriorPull:
    """The stored snapshot an incremental pull continues from (set by the run)."""

    #: start of the last successful pull
    since: datetime
    #: opportunity ids in the stored snapshot (any iterable, e.g. the id column; only read when
    #: a reconciliation is due, so a run that does not need them pays nothing)
    ids: Iterable[Any]
    #: when the stored snapshot was pulled
    pulled_at: datetime
    state: StreamState = field(default_factory=StreamState)

    @cached_property
    def known_ids(self) -> frozenset[str]:
        return frozenset(str(i) for i in self.ids)


@dataclass(frozen=True)
class ReconcilePolicy:
    """When an incremental pull also lists every id at the source (documented schedule)."""

    #: at least this often (days) since the last reconciliation or full pull
    every_days: float = 7.0
    #: and whenever the stored snapshot is older than this (Salesforce's Recycle Bin keeps
    #: deleted records 15 days: past that, IsDeleted rows can no longer tell what went)
    max_snapshot_age_days: float = 15.0

    def due(self, prior: PriorPull, now: datetime) -> str | None:
        """Why reconciliation is due now, or None."""
        if now - prior.pulled_at >= timedelta(days=self.max_snapshot_age_days):
            return (f"the stored snapshot is older than {self.max_snapshot_age_days:g} days "
                    "(the Recycle Bin's retention)")
        last = prior.state.reconciled_at
        if last is None:
            return "no reconciliation recorded for the stored snapshot"
        if now - last >= timedelta(days=self.every_days):
            return f"last reconciliation is {self.every_days:g} days or more ago"
        return None


class StreamReads(Protocol[R]):
    """The reads a connector implements on its transport for one stream."""

    def read_all(self) -> list[R]:
        """Every live record (a full pull)."""

    def read_changed(self, since: datetime, until: datetime) -> tuple[list[R], list[str]]:
        """Records whose replication key is at or after ``since`` (live ones) and the ids of
        records the same feed marks as removed (deleted / archived) in that window."""

    def read_removed(self, since: datetime, until: datetime) -> tuple[list[str], datetime]:
        """Ids the source lists as removed in ``[since, until]`` beyond the change feed
        (e.g. Salesforce's ``deleted`` resource: records purged from the Recycle Bin), and
        up to when the source says the list is complete."""

    def read_ids(self) -> set[str]:
        """Every live id, as cheaply as the API allows (reconciliation)."""


@dataclass
class StreamResult(Generic[R]):
    records: list[R]
    incremental: bool
    #: ids removed at the source since the prior pull (sorted)
    deleted_ids: list[str]
    state: StreamState
    #: why the stored ids were reconciled on this pull (None: not reconciled)
    reconciled: str | None = None
    #: where each deleted id was found: "feed", "removed", "reconciliation"
    deleted_by: dict[str, int] = field(default_factory=dict)


@dataclass
class Stream(Generic[R]):
    """Runs one declared stream: a full pull, or an incremental one with deletions."""

    spec: StreamSpec
    reads: StreamReads[R]
    #: how far each incremental window reaches back before the bookmark (late-indexed changes)
    lookback: timedelta = timedelta(0)
    policy: ReconcilePolicy = field(default_factory=ReconcilePolicy)
    #: how far back the source lists removed ids (Salesforce: 30 days); None = no such list
    removed_window: timedelta | None = None
    #: the primary keys of pulled records, when records are not dicts (e.g. frames)
    keys: Callable[[list[R]], set[str]] | None = None

    def pull(self, prior: PriorPull | None, now: datetime) -> StreamResult[R]:
        if prior is None:
            records = self.reads.read_all()
            return StreamResult(records, False, [],
                                StreamState(bookmark=now, reconciled_at=now, removed_until=now))
        bookmark = prior.state.bookmark or prior.since
        since = bookmark - self.lookback
        removed_from = min(since, prior.state.removed_until or since)
        removed_until = prior.state.removed_until
        records, feed_removed = self.reads.read_changed(since, now)
        by: dict[str, set[str]] = {"feed": set(feed_removed)}
        reason = self.policy.due(prior, now)
        if self.removed_window is not None:
            if now - removed_from > self.removed_window:
                # the source no longer lists removals that old: only a full id list can tell
                reason = reason or (f"the last pull is more than {self.removed_window.days} "
                                    "days ago, beyond the source's list of deleted records")
                removed_until = now
            else:
                removed, removed_until = self.reads.read_removed(removed_from, now)
                by["removed"] = set(removed)
        reconciled_at = prior.state.reconciled_at
        if reason and not prior.known_ids:  # nothing stored that could have gone
            reason = None
        if reason:
            live = self.reads.read_ids()
            by["reconciliation"] = set(prior.known_ids) - live
            reconciled_at = now
            log.info("%s: reconciled %d stored ids against the source (%s): %d gone",
                     self.spec.name, len(prior.known_ids), reason, len(by["reconciliation"]))
        pulled = self.keys(records) if self.keys else {
            str(r[self.spec.primary_key]) for r in records}
        # a record the pull returns alive is not deleted (e.g. restored from the Recycle Bin)
        deleted = set().union(*by.values()) - pulled
        return StreamResult(
            records, True, sorted(deleted),
            StreamState(bookmark=now, reconciled_at=reconciled_at,
                        removed_until=removed_until), reason,
            {k: len(v - pulled) for k, v in by.items() if v - pulled},
        )


class Pages:
    """Checks one cursor-paged listing: each page has a list of records, and a cursor is
    neither repeated nor handed out by an empty page (either would mean looping forever or
    silently missing records). Used by every paged read of the API connectors (HubSpot lists
    and search, Salesforce REST query pages and Bulk 2.0 result pages); the message texts are
    each API's own words for its cursor."""

    def __init__(
        self, what: str, service: str, shape: str = "list of records", *,
        where: str = "{service} {what}, page {page}: ",
        empty: str = ("an empty page that points to a next one; stopped without passing on a "
                      "partial pull"),
        repeat: str = ("paging cursor {cursor!r} repeats the one of page {first}; stopped "
                       "rather than page in a loop"),
        bad_shape: str = ("unexpected response shape (no {shape}); stopped without passing on "
                          "a partial pull"),
    ) -> None:
        self.what = what
        self.service = service
        self.shape = shape
        self.page = 0
        self.seen: dict[str, int] = {}
        self._where, self._empty, self._repeat, self._bad = where, empty, repeat, bad_shape

    def turn(self) -> int:
        """Count one more page received; returns its number."""
        self.page += 1
        return self.page

    def fail(self, text: str) -> ConnectorError:
        return ConnectorError(self._where.format(service=self.service, what=self.what,
                                                 page=self.page) + text)

    def records(self, records: Any) -> list[Any]:
        self.turn()
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise self.fail(self._bad.format(shape=self.shape))
        return records

    def next(self, cursor: str | None, records: Sized) -> str | None:
        """The cursor of the next page (None: this was the last one), once checked."""
        if cursor is None:
            return None
        if not len(records):
            raise self.fail(self._empty)
        if cursor in self.seen:
            raise self.fail(self._repeat.format(cursor=cursor, first=self.seen[cursor]))
        self.seen[cursor] = self.page
        return cursor
