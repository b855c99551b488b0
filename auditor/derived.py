"""Frames derived from a Snapshot once and shared by every rule and metric.

Stage-history group-bys are the expensive part of an audit, so they are computed here, cached on
the Snapshot, and reused: no rule re-sorts or re-groups the history itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from auditor.snapshot import Snapshot
from auditor.stages import STAGES


def _cached(snap: Snapshot, key: str, build):  # noqa: ANN001, ANN202 - tiny memo helper
    if key not in snap._cache:
        snap._cache[key] = build()
    return snap._cache[key]


def history_positions(snap: Snapshot) -> pd.DataFrame:
    """Stage history joined to opportunity row positions, sorted by (row, entered_at).

    Columns: ``row`` (position in ``snap.opportunities``), ``code`` (stage order, -1 unknown),
    ``entered_at``. Rows whose opportunity is not in the Snapshot are dropped.
    """

    def build() -> pd.DataFrame:
        hist = snap.stage_history
        ids = snap.opportunities["id"]
        pos = pd.Index(ids.astype(object)).get_indexer(hist["opportunity_id"].astype(object))
        out = pd.DataFrame(
            {
                "row": pos,
                "code": hist["stage"].cat.codes.to_numpy(),
                # naive UTC: a tz-aware column would become an object array of Timestamps
                "entered_at": hist["entered_at"].dt.tz_convert(None).to_numpy(),
            }
        )
        out = out[(out["row"] >= 0) & (out["code"] >= 0)]
        return out.sort_values(["row", "entered_at"], kind="stable").reset_index(drop=True)

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
    """Consecutive stage moves per opportunity: ``row``, ``from_code``, ``to_code``, ``at``.

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
                "at": hp["entered_at"].to_numpy()[1:][keep],
            }
        )

    return _cached(snap, "transitions", build)
