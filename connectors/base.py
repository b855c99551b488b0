"""The connector contract and the source options every connector shares."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from auditor.config import Section
from auditor.snapshot import Snapshot
from connectors.streams import PriorPull


class SourceOptions(Section):
    """Keys every ``[source]`` table accepts (besides ``type``)."""

    #: display name of the source (default: the type); part of every violation fingerprint
    name: str | None = None
    #: source stage (id or label, case-insensitive) → common stage; merged over the default map
    stage_map: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class PullProgress:
    """How far a pull has got, reported after each page (or file) read."""

    #: what is being read, e.g. "Opportunity", "deals", "opportunities.csv"
    what: str
    #: records of ``what`` read so far
    records: int
    #: pages (or files) of ``what`` read so far
    pages: int
    #: API calls this pull has used so far (0 for files)
    api_calls: int = 0
    #: records of ``what`` expected in all, when the source says (gives an ETA)
    total: int | None = None


ProgressCallback = Callable[[PullProgress], None]


class Connector(ABC):
    """Pulls one source into a Snapshot.

    Subclasses set ``type_name`` and ``Options`` (a :class:`SourceOptions` subclass). ``pull``
    either returns a complete, validated Snapshot or raises an ``AuditorError``: it never
    returns a partial pull.
    """

    type_name: ClassVar[str]
    Options: ClassVar[type[SourceOptions]] = SourceOptions
    #: set by the run to show progress; connectors call :meth:`progress` after each page
    on_progress: ProgressCallback | None = None
    #: False for file sources (exports, CSV): the run then never passes ``since`` nor loads a
    #: stored snapshot to merge into; every run audits the files as they are
    pulls_incrementally: ClassVar[bool] = True
    #: the stored snapshot an incremental pull continues from (ids, stream state); set by the
    #: run before ``pull(since=...)``. API connectors use it to reconcile deletions.
    prior: PriorPull | None = None

    def __init__(
        self,
        options: SourceOptions,
        *,
        base_dir: Path = Path("."),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.options = options
        self.base_dir = base_dir
        self.env = os.environ if env is None else env

    def progress(self, what: str, records: int, pages: int, api_calls: int = 0,
                 total: int | None = None) -> None:
        """Report pull progress (no-op unless the run asked for it)."""
        if self.on_progress is not None:
            self.on_progress(PullProgress(what, records, pages, api_calls, total))

    @property
    def source_name(self) -> str:
        return self.options.name or self.type_name

    def resolve(self, p: str | Path) -> Path:
        p = Path(p).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @abstractmethod
    def pull(self, since: datetime | None = None) -> Snapshot:
        """Pull everything (``since=None``) or only records changed since ``since``.

        Incremental contract (used by nightly runs, see ``auditor.incremental``):

        - ``since`` is a tz-aware UTC datetime: the start of the last successful pull.
        - A connector that can pull incrementally returns only the opportunities created or
          changed since then (and their stage-history entries: all of them, or only the new
          ones — the merge unions them with the stored history), sets ``meta.incremental =
          True`` and lists the ids of opportunities removed at the source since then in
          ``meta.deleted_ids`` (the only place the merge reads deletions). Owners may be
          all or only the changed ones. ``meta.api_calls`` counts the calls of this pull only.
          ``self.prior`` (when set) carries the stored ids and the stream state
          (``meta.stream_state``) of the stored snapshot; see :mod:`connectors.streams`.
        - A connector that cannot ignores ``since`` and returns a full snapshot with
          ``meta.incremental = False``; the run then uses it as it is.
        """

    def check(self) -> dict[str, Any]:
        """Connect and read metadata without auditing (``crm-audit check-config``).

        Returns facts to print (e.g. unmapped stages, API usage). Default: nothing to check.
        """
        return {}
