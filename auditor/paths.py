"""Where recorded stage paths start, and which records an import created (issue #14).

A stage history only shows what the CRM recorded. A deal created directly in a late stage (lead
conversion in Salesforce qualifies on the Lead) or loaded by a migration at its current stage
has a path that *starts* there: nothing says how it got there. Stage-path rules must not read
that as "skipped qualification". Imports are recognised by their shape: many records created in
the same second, each with its stage history starting at that second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from auditor.derived import _cached, history_positions, history_rows
from auditor.snapshot import Snapshot

_US_PER_S = 1_000_000
_NAT = np.iinfo(np.int64).min


def _us(col: pd.Series) -> np.ndarray:
    """A tz-aware timestamp column as int64 microseconds since the epoch (NaT = int64 min)."""
    return col.dt.tz_convert(None).to_numpy(dtype="datetime64[us]").view(np.int64)


def first_history_code(snap: Snapshot) -> np.ndarray:
    """Per opportunity, the common stage code of its first mapped history row (-1: none)."""

    def build() -> np.ndarray:
        hp = history_positions(snap)  # sorted by (row, time)
        out = np.full(len(snap.opportunities), -1, dtype=np.int64)
        rows = hp["row"].to_numpy()
        if rows.size:
            first = np.r_[True, rows[1:] != rows[:-1]]
            out[rows[first]] = hp["code"].to_numpy()[first]
        return out

    return _cached(snap, "paths.first_code", build)


def reached_stages(snap: Snapshot) -> frozenset[str]:
    """Common stages the source's pipeline uses: what the connector declared
    (``meta.reached_stages``: picklist / pipeline definition, else the stages its data holds)
    plus every mapped stage the Snapshot holds, including history observed between runs."""

    def build() -> frozenset[str]:
        used: set[str] = set(snap.meta.reached_stages)
        # the categorical's codes say which stages occur: no per-row text (seconds at 1M)
        for col in (snap.opportunities["stage"], snap.stage_history["stage"]):
            codes = np.unique(col.cat.codes.to_numpy())
            used.update(str(col.cat.categories[c]) for c in codes[codes >= 0])
        return frozenset(used)

    return _cached(snap, "paths.reached", build)


def path_has_unmapped(snap: Snapshot) -> np.ndarray:
    """True where the current stage or any history row is a source stage the map lacks."""

    def build() -> np.ndarray:
        opp = snap.opportunities
        out = (opp["stage"].isna() & opp["source_stage"].notna()).to_numpy(dtype=bool).copy()
        h = snap.stage_history
        bad = (h["stage"].isna() & h["source_stage"].notna()).to_numpy(dtype=bool)
        if bad.any():
            pos = history_rows(snap)[bad]
            out[pos[pos >= 0]] = True
        return out

    return _cached(snap, "paths.unmapped", build)


@dataclass(frozen=True)
class ImportBatch:
    """Records one import created: its day (UTC) and how many records."""

    day: str
    records: int

    def note(self) -> str:
        return (
            f"{self.records} records look imported on {self.day}; "
            "their stage history starts there"
        )


def import_artefacts(snap: Snapshot, min_records: int) -> tuple[np.ndarray, list[ImportBatch]]:
    """(mask of records an import created, the import batches found).

    A batch is a creation second shared by at least ``min_records`` records whose stage history
    starts in that same second. People do not create five deals in one second; data loaders,
    migrations and integrations do. Records without history, and creation times at midnight
    (date-only sources such as a CSV with dates), are never counted.
    """

    def build() -> tuple[np.ndarray, list[ImportBatch]]:
        opp = snap.opportunities
        n = len(opp)
        created = _us(opp["created_at"])
        sec = np.where(created == _NAT, _NAT, created // _US_PER_S)
        mask = np.zeros(n, dtype=bool)
        if n == 0:
            return mask, []
        # first raw history time per record (mapped or not: an import row may be unmapped)
        h = snap.stage_history
        first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        if len(h):
            pos = history_rows(snap)
            at = _us(h["entered_at"])
            ok = (pos >= 0) & (at != _NAT)
            np.minimum.at(first, pos[ok], at[ok])
        # an import is told by its history starting at the creation second: records without
        # history say nothing, and date-only creation times (midnight) are no evidence either
        starts_at_creation = first // _US_PER_S == sec
        midnight = (sec % 86_400) == 0
        candidate = (sec != _NAT) & starts_at_creation & ~midnight
        if not candidate.any():
            return mask, []
        codes, uniq = pd.factorize(sec[candidate])
        size = np.bincount(codes)
        big = size[codes] >= min_records
        idx = np.flatnonzero(candidate)[big]
        mask[idx] = True
        batches: dict[str, int] = {}
        for s, count in zip(uniq, size, strict=True):
            if count >= min_records:
                day = pd.Timestamp(int(s) * _US_PER_S, unit="us").date().isoformat()
                batches[day] = batches.get(day, 0) + int(count)
        return mask, [ImportBatch(d, c) for d, c in sorted(batches.items())]

    return _cached(snap, f"paths.imports.{min_records}", build)


def newest_change(snap: Snapshot) -> pd.Timestamp | None:
    """The newest moment the data shows a change (updates, creations, stage moves)."""
    stamps = []
    for col in (snap.opportunities["updated_at"], snap.opportunities["created_at"],
                snap.stage_history["entered_at"]):
        m = col.max()
        if m is not None and not pd.isna(m):
            stamps.append(m)
    return max(stamps) if stamps else None
