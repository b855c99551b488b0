"""A scripted connector for pipeline tests: each pull returns the next prepared Snapshot.

Registered under ``source.type = "scripted"`` by the ``scripted`` fixture (conftest). Every
``pull(since=...)`` is recorded, so tests can assert full vs incremental pulls.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from auditor.snapshot import Snapshot
from connectors.base import Connector, SourceOptions

Step = Snapshot | Callable[[datetime | None], Snapshot] | BaseException


class ScriptedConnector(Connector):
    type_name: ClassVar[str] = "scripted"
    Options: ClassVar[type[SourceOptions]] = SourceOptions

    script: ClassVar[list[Step]] = []
    calls: ClassVar[list[datetime | None]] = []

    def pull(self, since: datetime | None = None) -> Snapshot:
        ScriptedConnector.calls.append(since)
        step = ScriptedConnector.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step(since) if callable(step) else step
