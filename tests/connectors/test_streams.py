"""The connector stream base: state, deletions, reconciliation schedule, page checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from auditor.errors import ConnectorError
from connectors.streams import Pages, PriorPull, ReconcilePolicy, Stream, StreamSpec, StreamState

NOW = datetime(2024, 6, 10, 12, tzinfo=UTC)
SPEC = StreamSpec("things", "id", "modified", ("id", "modified"))


class Reads:
    """A source of dict records that logs which reads the stream asked for."""

    def __init__(self, live: list[str], changed: list[str], feed_removed: list[str],
                 removed: list[str]) -> None:
        self.live, self.changed = live, changed
        self.feed_removed, self.removed = feed_removed, removed
        self.log: list[tuple] = []

    def read_all(self) -> list[dict]:
        self.log.append(("all",))
        return [{"id": i} for i in self.live]

    def read_changed(self, since: datetime, until: datetime) -> tuple[list[dict], list[str]]:
        self.log.append(("changed", since, until))
        return [{"id": i} for i in self.changed], list(self.feed_removed)

    def read_removed(self, since: datetime, until: datetime) -> tuple[list[str], datetime]:
        self.log.append(("removed", since, until))
        return list(self.removed), until - timedelta(seconds=30)

    def read_ids(self) -> set[str]:
        self.log.append(("ids",))
        return set(self.live)


def _prior(days_ago: float, reconciled_days_ago: float | None, known: set[str]) -> PriorPull:
    at = NOW - timedelta(days=days_ago)
    rec = None if reconciled_days_ago is None else NOW - timedelta(days=reconciled_days_ago)
    return PriorPull(at, frozenset(known), at, StreamState(at, rec, at))


def test_full_pull_starts_the_state() -> None:
    reads = Reads(["1", "2"], [], [], [])
    res = Stream(SPEC, reads).pull(None, NOW)
    assert (res.incremental, res.deleted_ids, reads.log) == (False, [], [("all",)])
    assert res.state == StreamState(NOW, NOW, NOW)
    assert StreamState.from_meta(res.state.to_meta()) == res.state


def test_incremental_pull_unions_the_three_kinds_of_deletion() -> None:
    reads = Reads(live=["1", "2", "4"], changed=["2", "4"], feed_removed=["3"],
                  removed=["3", "5", "4"])  # 4 was deleted and restored: it came back alive
    stream = Stream(SPEC, reads, lookback=timedelta(hours=1), removed_window=timedelta(days=30))
    res = stream.pull(_prior(1, 8, {"1", "2", "3", "5", "6"}), NOW)
    since = NOW - timedelta(days=1, hours=1)
    assert reads.log == [("changed", since, NOW), ("removed", since, NOW), ("ids",)]
    assert res.deleted_ids == ["3", "5", "6"]  # 6: only the reconciliation knew
    assert res.deleted_by == {"feed": 1, "removed": 2, "reconciliation": 3}
    assert res.reconciled == "last reconciliation is 7 days or more ago"
    assert res.state == StreamState(NOW, NOW, NOW - timedelta(seconds=30))


@pytest.mark.parametrize("age,reconciled,reason", [
    (1, 6.99, None),
    (1, 7, "last reconciliation is 7 days or more ago"),
    (1, None, "no reconciliation recorded for the stored snapshot"),
    (15, 1, "the stored snapshot is older than 15 days (the Recycle Bin's retention)"),
    (14.9, 1, None),
])
def test_reconcile_policy(age, reconciled, reason) -> None:
    assert ReconcilePolicy().due(_prior(age, reconciled, {"1"}), NOW) == reason


def test_beyond_the_removed_list_window_only_reconciliation_can_tell() -> None:
    reads = Reads(["1"], [], [], ["2"])
    res = Stream(SPEC, reads, removed_window=timedelta(days=30)).pull(
        _prior(31, 1, {"1", "2"}), NOW)
    assert [k[0] for k in reads.log] == ["changed", "ids"]
    assert res.deleted_ids == ["2"] and res.reconciled.startswith("the stored snapshot")


def test_pages_refuse_loops_and_empty_pages_that_point_further() -> None:
    p = Pages("things list", "Acme")
    assert p.next("c1", p.records([{"id": 1}])) == "c1"
    with pytest.raises(ConnectorError, match="page 2: paging cursor 'c1' repeats the one of "
                                             "page 1; stopped rather than page in a loop"):
        p.next("c1", p.records([{"id": 2}]))
    q = Pages("things list", "Acme")
    with pytest.raises(ConnectorError, match="page 1: an empty page that points to a next one"):
        q.next("c1", q.records([]))
    with pytest.raises(ConnectorError, match=r"page 2: unexpected response shape \(no list"):
        q.records({"not": "a list"})
