"""Frames derived from a Snapshot once and shared by every rule and metric.

Stage-history group-bys are the expensive part of an audit, so they are computed here, kept in
the Snapshot's memo (auditor.memo, keys ``("derived", name)``), and reused: no rule re-sorts or
re-groups the history itself.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from auditor.context import AuditContext
from auditor.snapshot import Snapshot
from auditor.stages import OPEN_STAGES, STAGES

T = TypeVar("T")


def _cached(snap: Snapshot, key: str, build: Callable[[], T]) -> T:
    return snap.memo.get(("derived", key), build)


def release(snap: Snapshot) -> None:
    """Free every value derived from ``snap`` (history joins, stage matrices, rule caches) once
    rules and metrics are done: at a million deals they hold about 0.5 GiB that the reports
    never read. They are caches: anything asked for again is rebuilt."""
    snap.memo.clear()
    trim_memory()


#: derived values the metrics read (directly or to build theirs); the rest only serve rules
_METRICS_READ = ("history_positions", "visited", "has_history", "paths.")


def release_rule_caches(snap: Snapshot) -> None:
    """Free what only the rules read (their own caches, stage moves, day counts, the history
    join's raw positions) before the metrics run: about 0.15 GiB at a million deals that would
    otherwise sit under the metrics' peak. Caches: anything asked for again is rebuilt."""

    def rule_only(key: object) -> bool:
        if not isinstance(key, tuple) or not key:
            return False
        if key[0] == "rule":
            return True
        return key[0] == "derived" and not str(key[1]).startswith(_METRICS_READ)

    snap.memo.discard(rule_only)
    trim_memory()


def trim_memory() -> None:
    """Hand memory freed by the allocators back to the system (Arrow's pool, glibc's heap).

    Both keep freed blocks for reuse; after an audit's temporaries (hundreds of MiB at a million
    deals) that is memory the next phases cannot use and the peak RSS counts. Milliseconds.
    """
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _glibc() -> ctypes.CDLL | None:
    if sys.platform != "linux":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - musl and others have no malloc_trim
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def day_counts(snap: Snapshot, ctx: AuditContext, column: str) -> pd.Series:
    """``ctx.days_since`` of an opportunity date column, once per snapshot and audit day.

    Several rules (and their messages) read the same day counts; ``"a|b"`` counts from the
    first of ``a``, ``b`` that is not missing (last activity, else creation). Read-only: the
    Series is shared.
    """
    key = f"days.{column}.{ctx.as_of.value}.{ctx.timezone}"

    def build() -> pd.Series:
        opp = snap.opportunities
        first, *rest = column.split("|")
        values = opp[first]
        for other in rest:
            values = values.fillna(opp[other])
        return ctx.days_since(values)

    return _cached(snap, key, build)


def id_index(snap: Snapshot) -> pd.Index:
    """Index of opportunity ids (row position = index position), hashed once and shared."""

    def build() -> pd.Index:
        return pd.Index(snap.opportunities["id"].astype(object))

    return _cached(snap, "id_index", build)


def _arrow(s: pd.Series) -> pa.ChunkedArray | pa.Array:
    return pa.array(s.array) if isinstance(s.dtype, pd.StringDtype) else pa.array(s.astype(str))


def positions(keys: pd.Series, values: pd.Series) -> np.ndarray:
    """Position of each value in ``keys`` (-1 when absent), by Arrow's hash lookup.

    About five times faster than ``pd.Index.get_indexer`` on object strings: the history of a
    million opportunities is joined in a fraction of a second.
    """
    found = pc.index_in(_arrow(values), value_set=_arrow(keys))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def history_rows(snap: Snapshot) -> np.ndarray:
    """Row position in ``snap.opportunities`` of every stage-history row (-1: not there).

    The one join of the history to the opportunities, shared by every derived frame, path
    check and metric. Connectors deliver a deal's history rows together, so only the first
    row of each run of equal ids is looked up (about a fifth of the rows).
    """

    def build() -> np.ndarray:
        ids = _arrow(snap.stage_history["opportunity_id"])
        n = len(ids)
        if n < 2:
            return positions(snap.opportunities["id"], snap.stage_history["opportunity_id"])
        change = pc.not_equal(ids.slice(1), ids.slice(0, n - 1))
        starts = np.empty(n, dtype=bool)
        starts[0] = True
        starts[1:] = change.fill_null(True).to_numpy(zero_copy_only=False)
        heads = ids.filter(pa.array(starts))
        found = pc.index_in(heads, value_set=_arrow(snap.opportunities["id"]))
        # int32 positions: half the memory of int64 for 5M rows, and numpy indexes with them
        pos = found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
        return pos[np.cumsum(starts) - 1]

    return _cached(snap, "history_rows", build)


def history_positions(snap: Snapshot) -> pd.DataFrame:
    """Stage history joined to opportunity row positions, sorted by (row, entered_at).

    Columns: ``row`` (position in ``snap.opportunities``), ``code`` (stage order, -1 unknown),
    ``entered_at`` (naive UTC). Rows whose opportunity is not in the Snapshot are dropped.
    """

    def build() -> pd.DataFrame:
        hist = snap.stage_history
        pos = history_rows(snap)
        code = hist["stage"].cat.codes.to_numpy()
        # naive UTC: a tz-aware column would become an object array of Timestamps (seconds on
        # millions of rows). Sorting works on the int64 microseconds.
        stamps = hist["entered_at"].array
        us = (stamps if stamps.unit == "us" else stamps.as_unit("us")).asi8  # UTC, no copy
        keep = (pos >= 0) & (code >= 0)
        pos, code, us = pos[keep], code[keep], us[keep]
        at = us.view("datetime64[us]")
        us = np.where(us == np.iinfo(np.int64).min, np.iinfo(np.int64).max, us)  # NaT last
        # connectors usually deliver history grouped and in time order: then skip the sort
        in_order = np.all((pos[1:] > pos[:-1]) | ((pos[1:] == pos[:-1]) & (us[1:] >= us[:-1])))
        if not in_order:
            order = np.lexsort((us, pos))  # stable: equal times keep their source order
            pos, code, at = pos[order], code[order], at[order]
        return pd.DataFrame({"row": pos, "code": code, "entered_at": at}, copy=False)

    return _cached(snap, "history_positions", build)


def has_history(snap: Snapshot) -> pd.Series:
    """True for opportunities with at least one stage-history row."""

    def build() -> pd.Series:
        mask = np.zeros(len(snap.opportunities), dtype=bool)
        mask[history_positions(snap)["row"].unique()] = True
        return pd.Series(mask, index=snap.opportunities.index)

    return _cached(snap, "has_history", build)


def visited(snap: Snapshot) -> pd.DataFrame:
    """Boolean matrix (opportunity × common stage): was the opportunity ever in that stage?

    Union of its stage history and its current stage.
    """

    def build() -> pd.DataFrame:
        n = len(snap.opportunities)
        mat = np.zeros((n, len(STAGES)), dtype=bool)
        hp = history_positions(snap)
        mat[hp["row"].to_numpy(), hp["code"].to_numpy()] = True
        cur = snap.opportunities["stage"].cat.codes.to_numpy()
        ok = cur >= 0
        mat[np.flatnonzero(ok), cur[ok]] = True
        return pd.DataFrame(mat, columns=list(STAGES), index=snap.opportunities.index)

    return _cached(snap, "visited", build)


def transitions(snap: Snapshot) -> pd.DataFrame:
    """Consecutive stage moves per opportunity: ``row``, ``from_code``, ``to_code``.

    Built from the sorted history; consecutive duplicates are not moves.
    """

    def build() -> pd.DataFrame:
        hp = history_positions(snap)
        same_opp = hp["row"].to_numpy()[1:] == hp["row"].to_numpy()[:-1]
        frm = hp["code"].to_numpy()[:-1]
        to = hp["code"].to_numpy()[1:]
        keep = same_opp & (frm != to)
        return pd.DataFrame(
            {
                "row": hp["row"].to_numpy()[1:][keep],
                "from_code": frm[keep],
                "to_code": to[keep],
            },
            copy=False,
        )

    return _cached(snap, "transitions", build)


#: stage codes a forward move may *target* and still count for skipped-stage logic: the open
#: stages and closed_won (a deal may be lost from anywhere, so a move to closed_lost skips nothing)
_JUDGED_TARGETS = np.array([STAGES.index(s) for s in OPEN_STAGES] + [STAGES.index("closed_won")])
_OPEN_CODES = np.array([STAGES.index(s) for s in OPEN_STAGES])


def jumped_over(snap: Snapshot) -> pd.DataFrame:
    """Boolean matrix (opportunity × common stage): a forward move jumped over that stage.

    A move from stage a to stage b (b > a, b open or closed_won) jumps over every stage s with
    a < s < b. Callers decide which stages count (pipeline's reached stages, exclusions) and
    whether a stage visited at another time still counts as skipped.
    """

    def build() -> pd.DataFrame:
        n = len(snap.opportunities)
        mat = np.zeros((n, len(STAGES)), dtype=bool)
        tr = transitions(snap)
        frm = tr["from_code"].to_numpy()
        to = tr["to_code"].to_numpy()
        fwd = (to > frm + 1) & np.isin(to, _JUDGED_TARGETS)
        if fwd.any():
            stage_ix = np.arange(len(STAGES))
            between = (stage_ix > frm[fwd, None]) & (stage_ix < to[fwd, None])
            t_ix, s_ix = np.nonzero(between)
            mat[tr["row"].to_numpy()[fwd][t_ix], s_ix] = True
        return pd.DataFrame(mat, columns=list(STAGES), index=snap.opportunities.index)

    return _cached(snap, "jumped_over", build)


def regressions(snap: Snapshot) -> pd.DataFrame:
    """Backward moves between open stages, per opportunity.

    Columns: ``count`` (number of moves from an open stage to an earlier open stage), and
    ``from_code`` / ``to_code`` of the most recent such move (-1 when none).
    """

    def build() -> pd.DataFrame:
        n = len(snap.opportunities)
        tr = transitions(snap)
        frm = tr["from_code"].to_numpy()
        to = tr["to_code"].to_numpy()
        back = (to < frm) & np.isin(frm, _OPEN_CODES) & np.isin(to, _OPEN_CODES)
        rows = tr["row"].to_numpy()[back]
        count = np.bincount(rows, minlength=n)
        last_from = np.full(n, -1, dtype=np.int64)
        last_to = np.full(n, -1, dtype=np.int64)
        # transitions are sorted by (row, time): the last entry per row is the latest move
        last = np.append(rows[1:] != rows[:-1], True) if rows.size else np.zeros(0, dtype=bool)
        last_from[rows[last]] = frm[back][last]
        last_to[rows[last]] = to[back][last]
        return pd.DataFrame(
            {"count": count, "from_code": last_from, "to_code": last_to},
            index=snap.opportunities.index,
            copy=False,
        )

    return _cached(snap, "regressions", build)


def stage_spans(snap: Snapshot) -> pd.DataFrame:
    """Stays in a stage: ``row``, ``code``, ``entered_at``, ``left_at`` (naive UTC), ``first``.

    One row per history entry that starts a stay (a repeated entry of the stage the opportunity
    is already in is not a new stay). ``left_at`` is the next stay's ``entered_at`` (NaT for the
    opportunity's last stay: it is still there, or that is its final closed stage). ``first``
    is True for the opportunity's first stay in that stage (re-entries after a regression are
    later stays).

    Not cached: its one reader (the metrics) keeps the day numbers it needs, and the two
    timestamp columns (64 MiB at a million deals) are freed once those are taken.
    """

    def build() -> pd.DataFrame:
        hp = history_positions(snap)
        row = hp["row"].to_numpy()
        code = hp["code"].to_numpy()
        at = hp["entered_at"].to_numpy(dtype="datetime64[us]")  # UTC, without the tz
        starts = np.ones(len(hp), dtype=bool)
        starts[1:] = (row[1:] != row[:-1]) | (code[1:] != code[:-1])
        row, code, at = row[starts], code[starts], at[starts]
        left = np.full(len(row), np.datetime64("NaT"), dtype=at.dtype)
        same_next = row[1:] == row[:-1]
        left[:-1] = np.where(same_next, at[1:], left[:-1])
        out = pd.DataFrame(
            {"row": row, "code": code, "entered_at": at, "left_at": left}, copy=False
        )
        # a repeated stage needs a stay whose stage is not above the previous one (a regression);
        # only rows with one are checked, on one int64 key per (row, stage)
        first = np.ones(len(row), dtype=bool)
        back = (row[1:] == row[:-1]) & (code[1:] <= code[:-1])
        if back.any():
            marked = np.zeros(len(snap.opportunities), dtype=bool)
            marked[row[1:][back]] = True
            irregular = marked[row]
            key = row[irregular] * 16 + code[irregular]
            first[irregular] = ~pd.Series(key).duplicated().to_numpy()
        out["first"] = first
        return out

    return build()
