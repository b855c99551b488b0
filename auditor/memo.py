"""The one memoisation mechanism for values derived from a Snapshot or an AuditRun.

A :class:`Memo` belongs to the object whose data the values are derived from
(``Snapshot.memo``, ``AuditRun.memo``); whoever derives a value names it with a key that starts
with its own layer or rule (``("derived", "visited")``, ``("rule", "DQ04", "keys")``,
``("reports", "owner_table")``), so no layer overwrites another's entries.

Thread-safe: rules ``prepare()`` on a second thread while the main thread evaluates other
rules. Each key is built once, under its own lock — a thread asking for a key another thread
is building waits for that build instead of repeating it; different keys build in parallel
(pandas / Arrow release the GIL). A build may ask for other keys (no cycles).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class Memo:
    """Values built once per key, safely from several threads."""

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}
        self._building: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The value for ``key``, built by ``build()`` the first time it is asked for."""
        try:
            return self._values[key]
        except KeyError:
            pass
        with self._lock:
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._values:
                self._values[key] = build()
            return self._values[key]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values

    def clear(self) -> None:
        """Forget every value (after the underlying data changed in place)."""
        with self._lock:
            self._values.clear()
            self._building.clear()

    def discard(self, drop: Callable[[Hashable], bool]) -> None:
        """Forget the values whose key ``drop`` selects (asked for again, they are rebuilt)."""
        with self._lock:
            for key in [k for k in self._values if drop(k)]:
                del self._values[key]
                self._building.pop(key, None)

    def __repr__(self) -> str:
        return f"Memo({len(self._values)} values)"
