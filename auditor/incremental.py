"""Merge an incremental pull into the last stored snapshot of the same source.

Contract (see ``connectors.base.Connector.pull``): an incremental pull returns only the records
changed since ``since``, sets ``meta.incremental = True`` and lists the ids of opportunities
removed at the source since then in ``meta.deleted_ids`` (the one place deletions are read).

Merge, by opportunity id: changed rows replace the stored ones, new rows are added, deleted ids
are removed (with their history). Owners: pulled rows replace stored ones by id.

Stage history is the union of the stored and the pulled entries of the kept opportunities, so a
connector may return either the full history of a changed record (HubSpot) or only the entries
written since ``since`` (Salesforce's OpportunityHistory). A pulled entry that repeats the stage
the record was already in is not a stage entry and is dropped, as a full pull would. The columns
a connector derives from history are then re-derived for the pulled records, because from a
partial history the connector could not get them right:

- ``stage_entered_at``: the latest entry into the record's current (source) stage;
- ``close_date_changes``: stored count + pulled count when the pulled history of a record starts
  after its stored history (only new entries), else the pulled count.

Cost: the stored snapshot is large (a million deals, five million history rows) and the delta
small, so only the *touched* records (changed or deleted) are worked on row by row in pandas;
the stored rows are selected by Arrow hash lookups against the touched ids and kept as they are
(already de-duplicated and in order from the pull or merge that stored them). The merged
history stays grouped in the order of the opportunity rows (changed records are appended), so
the engine's history join finds it in order and does not sort it again.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.types import union_categoricals

from auditor.snapshot import (
    Snapshot,
    as_category,
    make_opportunities,
    make_owners,
    make_stage_history,
)


def _lookup(keys: pd.Series, values: pd.Series) -> pd.Series:
    """``values`` looked up by ``keys``, keeping the values' dtype.

    Series.map would do, but it casts an *empty* datetime mapper to float64 and then fails: an
    incremental pull can bring no history row at all for the records it changed.
    """
    found = values[~values.index.duplicated()].reindex(keys.to_numpy())
    return pd.Series(found.array, index=keys.index)


def deleted_ids(snap: Snapshot) -> set[str]:
    return {str(i) for i in snap.meta.deleted_ids}


def _ids(s: pd.Series) -> pa.Array:
    """An id column as an Arrow string array (no copy for Arrow-backed strings)."""
    if isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
        arr = pa.array(s.array)
    else:
        arr = pa.array(s.astype(str).to_numpy(dtype=object), type=pa.large_string())
    return arr.cast(pa.large_string()) if arr.type != pa.large_string() else arr


def _in(values: pa.Array, value_set: pa.Array) -> np.ndarray:
    """``values`` isin ``value_set`` as a numpy bool mask (Arrow hash lookup; nulls: False)."""
    if len(value_set) == 0:
        return np.zeros(len(values), dtype=bool)
    return pc.is_in(values, value_set=value_set).fill_null(False).to_numpy(zero_copy_only=False)


def merge_incremental(base: Snapshot, delta: Snapshot) -> Snapshot:
    """The full snapshot after applying ``delta`` (an incremental pull) to ``base``."""
    gone = pa.array(sorted(deleted_ids(delta)), type=pa.large_string())
    d_opp = delta.opportunities
    d_ids = _ids(d_opp["id"])
    b_opp = base.opportunities
    b_ids = _ids(b_opp["id"])
    b_changed, b_gone = _in(b_ids, d_ids), _in(b_ids, gone)
    kept = b_opp[~(b_changed | b_gone)]
    added = d_opp[~_in(d_ids, gone)].reset_index(drop=True)
    added = _like(make_opportunities(added), b_opp)

    hist = base.stage_history
    if delta.meta.has_stage_history or len(delta.stage_history):
        touched = pa.concat_arrays([d_ids, gone])
        h_ids = _ids(hist["opportunity_id"])
        h_touched = _in(h_ids, touched)
        # stored history of untouched records stays as it is; orphans (no such record) go
        untouched = hist[~h_touched & _in(h_ids, b_ids)]
        small = _merged_history(hist[h_touched], delta.stage_history, added["id"])
        if delta.meta.has_stage_history and (len(small) or len(untouched)):
            added = _rederive(added, small, hist[h_touched], delta.stage_history, b_opp,
                              b_changed)
        hist = _concat_history(untouched, small)
    else:  # nothing pulled to merge: only drop the history of removed records
        hist = hist[~_in(_ids(hist["opportunity_id"]), gone)].reset_index(drop=True)
    opp = _concat(kept, added)

    owners = pd.concat([base.owners, delta.owners], ignore_index=True)
    owners = make_owners(owners.drop_duplicates("id", keep="last"))

    changed = int(b_changed.sum())
    extra = dict(delta.meta.extra)
    extra["merge"] = {
        "changed": changed,
        # ids are unique on both sides: every pulled id not found stored is new
        "added": int(len(d_ids) - changed),
        "removed": int(b_gone.sum()),
        "base_pulled_at": base.meta.pulled_at.isoformat(),
    }
    meta = replace(
        delta.meta,
        incremental=True,
        provided_fields=delta.meta.provided_fields or base.meta.provided_fields,
        has_stage_history=delta.meta.has_stage_history or base.meta.has_stage_history,
        # a delta holds only the changed records: the stages it uses are a subset
        reached_stages=delta.meta.reached_stages | base.meta.reached_stages,
        stage_expectations=delta.meta.stage_expectations or base.meta.stage_expectations,
        extra=extra,
    )
    return Snapshot(opp, hist, owners, meta).validate()


def _concat_history(stored: pd.DataFrame, merged: pd.DataFrame) -> pd.DataFrame:
    """Stored + merged history rows, keeping ``source_stage`` dictionary-encoded (a plain
    concat of two categoricals over different stage sets falls back to text)."""
    out = pd.concat([stored, merged], ignore_index=True)
    parts = [
        s if isinstance(s.dtype, pd.CategoricalDtype) else as_category(s)
        for s in (stored["source_stage"], merged["source_stage"])
    ]
    out["source_stage"] = union_categoricals(parts, ignore_order=True)
    return out


def _like(rows: pd.DataFrame, stored: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with every column of ``stored`` (missing ones NA, in its dtype)."""
    for col in stored.columns:
        if col not in rows.columns:
            rows[col] = pd.Series(pd.NA, index=rows.index, dtype=object).astype(
                stored[col].dtype)
    return rows


def _concat(kept: pd.DataFrame, added: pd.DataFrame) -> pd.DataFrame:
    """Stored rows then pulled ones, in the stored frame's column order and dtypes (both sides
    are already in the schema: conforming the million stored rows again would cost seconds)."""
    extra = [c for c in added.columns if c not in kept.columns]
    if extra:  # columns only the pull brought (a newly configured custom field)
        kept = kept.assign(**{c: pd.Series(pd.NA, index=kept.index, dtype=object).astype(
            added[c].dtype) for c in extra})
    return pd.concat([kept, added[list(kept.columns)]], ignore_index=True)


def _key(frame: pd.DataFrame) -> pd.Series:
    """The stage a row is in, as the source names it (its mapped stage where it has none)."""
    return (
        frame["source_stage"]
        .astype(object)
        .where(frame["source_stage"].notna(), frame["stage"].astype(object))
    )


def _merged_history(
    stored: pd.DataFrame, pulled: pd.DataFrame, ids: pd.Series
) -> pd.DataFrame:
    """History of the pulled records (``ids``, in their row order): stored + pulled entries,
    without duplicates, in time order, and without entries that repeat the stage before."""
    hist = pd.concat([stored, pulled], ignore_index=True)
    row = pd.Series(np.arange(len(ids)), index=ids.astype(object).to_numpy())
    hist = hist.assign(_row=_lookup(hist["opportunity_id"].astype(object), row).to_numpy())
    hist = hist[hist["_row"].notna().to_numpy()]
    hist = hist.drop_duplicates(["opportunity_id", "stage", "source_stage", "entered_at"])
    # grouped in the order of the records' rows, each record's entries in time order
    hist = hist.sort_values(["_row", "entered_at"], kind="stable").drop(columns="_row")
    # an entry into the stage the record was already in is no entry (e.g. an amount change)
    key = _key(hist)
    same_opp = hist["opportunity_id"].eq(hist["opportunity_id"].shift())
    repeat = same_opp & key.eq(key.shift()).fillna(False)
    return make_stage_history(hist[~repeat.to_numpy()].reset_index(drop=True))


def _rederive(
    added: pd.DataFrame,
    hist: pd.DataFrame,
    stored_hist: pd.DataFrame,
    pulled_hist: pd.DataFrame,
    stored_opp: pd.DataFrame,
    stored_changed: np.ndarray,
) -> pd.DataFrame:
    """stage_entered_at / close_date_changes of the pulled rows from their merged history.

    ``hist``: the merged history of the pulled records only; ``stored_hist``: their stored
    history; ``stored_changed``: which stored rows the pull changed.
    """
    added = added.copy()
    ids = added["id"].astype(object)
    current = pd.Series(_key(added).to_numpy(), index=ids.to_numpy())
    h_ids = hist["opportunity_id"].astype(object)
    in_current = _key(hist).to_numpy() == current.reindex(h_ids.to_numpy()).to_numpy()
    entered = hist["entered_at"][in_current].groupby(h_ids[in_current].to_numpy()).max()
    new_entered = _lookup(ids, entered)
    fill = new_entered.notna().to_numpy()
    if fill.any():
        added.loc[fill, "stage_entered_at"] = pd.to_datetime(
            new_entered[fill], utc=True).astype(added["stage_entered_at"].dtype)

    # close-date changes: add the stored count where the pulled history is only new entries
    b_last = stored_hist.groupby(stored_hist["opportunity_id"].astype(object))["entered_at"].max()
    d_first = pulled_hist.groupby(pulled_hist["opportunity_id"].astype(object))[
        "entered_at"
    ].min()
    first_new, last_stored = _lookup(ids, d_first), _lookup(ids, b_last)
    only_new = (first_new.isna() | (first_new > last_stored)).fillna(True)
    before = stored_opp[stored_changed]
    b_changes = pd.Series(before["close_date_changes"].array,
                          index=before["id"].astype(object).to_numpy())
    stored = _lookup(ids, b_changes).astype("Int64")
    add = only_new.to_numpy(dtype=bool) & stored.notna().to_numpy()
    if add.any():
        added.loc[add, "close_date_changes"] = (
            added.loc[add, "close_date_changes"].fillna(0) + stored[add]
        ).astype("Int64")
    return added
