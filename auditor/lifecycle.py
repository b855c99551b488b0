"""The deal lifecycle — open, closed, won, lost — decided in this one module.

:meth:`auditor.snapshot.Snapshot.validate` calls :func:`derive_lifecycle`, which writes the four
columns ``is_open``, ``is_closed``, ``is_won`` and ``is_lost`` (nullable boolean dtype, never NA
after validation). Every rule, metric, report and connector reads those columns; none derives
them again.

Precedence, per record:

1. **The source's own flags.** Connectors put what the CRM says into ``is_closed`` / ``is_won``
   (Salesforce ``IsClosed`` / ``IsWon`` or its stage metadata, HubSpot ``hs_is_closed`` /
   ``hs_is_closed_won`` or its pipeline metadata, a CSV's mapped columns), NA where it says
   nothing. A known flag wins: the CRM is the system of record for its own outcomes.
2. **Else the mapped common stage.** ``closed_won``, ``closed_lost`` and ``handoff`` are closed;
   ``closed_won`` and ``handoff`` are won (handoff comes after a win).
3. **Else open** (no flag, no mapped stage): an unknown deal is not an outcome.

Won implies closed (``is_won = is_closed & won``); lost is closed and not won; open is not closed.

A record whose known flags disagree with its mapped stage is a *contradiction*: the flags are
used, and the validator adds one warning to ``meta.warnings`` with the count and a few ids.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: common stages that are outcomes: the deal is closed
CLOSED_OUTCOMES: tuple[str, ...] = ("closed_won", "closed_lost", "handoff")
#: common stages that mean the deal was won
WON_OUTCOMES: tuple[str, ...] = ("closed_won", "handoff")
#: the derived columns, in schema order
LIFECYCLE_COLUMNS: tuple[str, ...] = ("is_open", "is_closed", "is_won", "is_lost")


def stage_outcome(stage: str) -> tuple[bool, bool]:
    """(closed, won) that a common stage implies on its own (for checking stage maps)."""
    return stage in CLOSED_OUTCOMES, stage in WON_OUTCOMES


def derive_lifecycle(opp: pd.DataFrame) -> tuple[dict[str, pd.Series], str | None]:
    """The four lifecycle columns of ``opp``, and the contradiction warning (None if none).

    Idempotent: derived flags are all known, so deriving again gives the same columns.
    """
    stage = opp["stage"]
    known_stage = stage.notna().to_numpy()
    stage_closed = stage.isin(CLOSED_OUTCOMES).to_numpy()
    stage_won = stage.isin(WON_OUTCOMES).to_numpy()
    flag_closed = opp["is_closed"]
    flag_won = opp["is_won"]
    fc_known = flag_closed.notna().to_numpy()
    fw_known = flag_won.notna().to_numpy()
    fc = flag_closed.to_numpy(dtype=bool, na_value=False)
    fw = flag_won.to_numpy(dtype=bool, na_value=False)

    closed = np.where(fc_known, fc, stage_closed & known_stage)
    won = closed & np.where(fw_known, fw, stage_won & known_stage)
    index = opp.index
    cols = {
        "is_open": pd.Series(~closed, index=index, dtype="boolean"),
        "is_closed": pd.Series(closed, index=index, dtype="boolean"),
        "is_won": pd.Series(won, index=index, dtype="boolean"),
        "is_lost": pd.Series(closed & ~won, index=index, dtype="boolean"),
    }
    # a contradiction: a known flag says otherwise than the known stage
    bad = known_stage & (
        (fc_known & (fc != stage_closed)) | (fc_known & fc & fw_known & (fw != stage_won))
    )
    warning = None
    if bad.any():
        ids = ", ".join(opp["id"][bad].astype(str).head(3))
        n = int(bad.sum())
        warning = (
            f"{n} record{'s' if n != 1 else ''} whose CRM closed/won flags contradict the mapped "
            f"stage (e.g. {ids}); the CRM's flags are used — check the stage map"
        )
    return cols, warning


def open_in_outcome_stage(opp: pd.DataFrame) -> pd.Series:
    """Deals the lifecycle keeps open (the CRM's flags say so) while their mapped stage is an
    outcome: the stage cannot place them in the open process, so stage-position rules (FU01)
    cannot judge them. Reads the derived ``is_open`` column."""
    closed_stage = opp["stage"].isin(CLOSED_OUTCOMES).to_numpy(dtype=bool)
    is_open = opp["is_open"].to_numpy(dtype=bool, na_value=False)
    return pd.Series(is_open & closed_stage, index=opp.index)
