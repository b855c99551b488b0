"""Stage history for sources that have none (CSV exports): observed between runs.

Each run compares the current stage of every record with the last stage the store saw for it:

- a record seen for the first time gets an entry with basis ``created`` when it was created
  after the previous observation of the source (we saw it from its start; entered at
  ``created_at``), else ``first_seen`` (entered at ``stage_entered_at`` when the source gives
  it, else at the observing run's audit day);
- a common-stage change gets an entry with basis ``change``, dated at the observing run's audit
  day (midnight in the audit time zone): the move happened at the latest that day.

Only records whose observed history is *anchored* are given history in the Snapshot: those
first seen at creation, or first seen in an opening stage (lead, contact), before which no
process gate exists. A record first seen further along has an unknown past; it stays "no stage
history" for the rules (reported as not evaluable) rather than looking as if it skipped stages.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from auditor.snapshot import Snapshot, make_stage_history

#: first-seen stages with nothing gated before them (their observed history counts as complete)
OPENING_STAGES = ("lead", "contact")
DERIVED_COLUMNS = ["opportunity_id", "stage", "source_stage", "entered_at", "basis"]


def observe_stages(
    previous: pd.DataFrame,
    opportunities: pd.DataFrame,
    observed_at: pd.Timestamp,
    previous_observed_at: pd.Timestamp | None,
) -> pd.DataFrame:
    """New derived-history rows from this observation (columns :data:`DERIVED_COLUMNS`).

    ``previous`` holds the stored rows of the source in insertion order; ``observed_at`` is the
    observing run's audit day as a UTC timestamp; ``previous_observed_at`` that of the previous
    observation (None on the first one).
    """
    opp = opportunities[opportunities["stage"].notna()]
    cur = pd.DataFrame(
        {
            "opportunity_id": opp["id"].astype(str).to_numpy(),
            "stage": opp["stage"].astype(str).to_numpy(),
            "source_stage": opp["source_stage"].to_numpy(),
            "created_at": opp["created_at"].to_numpy(),
            "stage_entered_at": opp["stage_entered_at"].to_numpy(),
        }
    )
    last = previous.drop_duplicates("opportunity_id", keep="last")[["opportunity_id", "stage"]]
    m = cur.merge(
        last.astype({"opportunity_id": str, "stage": str}),
        on="opportunity_id",
        how="left",
        suffixes=("", "_last"),
    )
    unseen = m["stage_last"].isna()
    changed = ~unseen & (m["stage"] != m["stage_last"])
    created_at = pd.to_datetime(m["created_at"], utc=True)
    entered_known = pd.to_datetime(m["stage_entered_at"], utc=True)
    if previous_observed_at is None:
        is_created = pd.Series(False, index=m.index)
    else:
        is_created = unseen & created_at.notna() & (created_at >= previous_observed_at)
    first_seen_at = entered_known.where(entered_known.notna(), observed_at)
    basis = pd.Series(pd.NA, index=m.index, dtype="object")
    basis[unseen] = "first_seen"
    basis[is_created] = "created"
    basis[changed] = "change"
    entered = pd.Series(observed_at, index=m.index)
    entered[unseen] = first_seen_at[unseen]
    entered[is_created] = created_at[is_created]
    keep = basis.notna()
    out = pd.DataFrame(
        {
            "opportunity_id": m["opportunity_id"],
            "stage": m["stage"],
            "source_stage": m["source_stage"],
            "entered_at": pd.to_datetime(entered, utc=True),
            "basis": basis,
        }
    )[keep.to_numpy()]
    return out.reset_index(drop=True)


def with_observed_history(snap: Snapshot, rows: pd.DataFrame) -> Snapshot:
    """A copy of ``snap`` whose stage history is the anchored observed history in ``rows``.

    ``rows`` are all derived rows of the source (stored + this run's), oldest first. Also fills
    ``stage_entered_at`` where the source leaves it empty and the observed date is exact.
    """
    rows = rows.reset_index(drop=True)
    first = rows.drop_duplicates("opportunity_id", keep="first")
    anchored_ids = first.loc[
        (first["basis"] == "created")
        | ((first["basis"] == "first_seen") & first["stage"].isin(OPENING_STAGES)),
        "opportunity_id",
    ]
    anchored = rows[rows["opportunity_id"].isin(set(anchored_ids))]
    history = make_stage_history(anchored[DERIVED_COLUMNS[:4]])

    opp = snap.opportunities.copy()
    provided = set(snap.meta.provided_fields)
    last = rows.drop_duplicates("opportunity_id", keep="last")
    exact = last[last["basis"].isin(["created", "change"])].reset_index(drop=True)
    pos = pd.Index(exact["opportunity_id"].astype(object)).get_indexer(opp["id"].astype(object))
    hit = pos >= 0
    exact_stage = exact["stage"].astype(object).to_numpy()
    same_stage = np.zeros(len(opp), dtype=bool)
    same_stage[hit] = exact_stage[pos[hit]] == opp["stage"].astype(str).to_numpy()[hit]
    fill = opp["stage_entered_at"].isna().to_numpy() & same_stage
    if fill.any():
        entered = pd.to_datetime(exact["entered_at"], utc=True)
        values = entered.iloc[pos[fill]].astype(opp["stage_entered_at"].dtype).to_numpy()
        opp.loc[fill, "stage_entered_at"] = values
        provided.add("stage_entered_at")

    without = int(len(opp) - opp["id"].astype(str).isin(set(anchored_ids)).sum())
    extra: dict[str, Any] = dict(snap.meta.extra)
    extra["observed_stage_history"] = {
        "records_with_history": int(history["opportunity_id"].nunique()),
        "records_without": without,
        "entries": int(len(history)),
        "stage_entered_at_filled": int(fill.sum()),
    }
    warnings = list(snap.meta.warnings)
    if without:
        warnings.append(
            f"stage history is observed between runs (the source has none): {without} records "
            "were first seen past the opening stages, so rules needing history skip them"
        )
    meta = replace(
        snap.meta,
        has_stage_history=True,
        provided_fields=frozenset(provided),
        extra=extra,
        warnings=warnings,
    )
    return Snapshot(opp, history, snap.owners, meta).validate()
