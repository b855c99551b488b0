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
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from auditor.snapshot import Snapshot, make_opportunities, make_owners, make_stage_history


def _lookup(keys: pd.Series, values: pd.Series) -> pd.Series:
    """``values`` looked up by ``keys``, keeping the values' dtype.

    Series.map would do, but it casts an *empty* datetime mapper to float64 and then fails: an
    incremental pull can bring no history row at all for the records it changed.
    """
    found = values[~values.index.duplicated()].reindex(keys.to_numpy())
    return pd.Series(found.array, index=keys.index)


def deleted_ids(snap: Snapshot) -> set[str]:
    return {str(i) for i in snap.meta.deleted_ids}


def merge_incremental(base: Snapshot, delta: Snapshot) -> Snapshot:
    """The full snapshot after applying ``delta`` (an incremental pull) to ``base``."""
    gone = deleted_ids(delta)
    d_opp = delta.opportunities
    d_ids = set(d_opp["id"].astype(str))
    b_opp = base.opportunities
    b_ids = b_opp["id"].astype(str)
    kept = b_opp[~b_ids.isin(d_ids | gone).to_numpy()]
    added = d_opp[~d_opp["id"].astype(str).isin(gone).to_numpy()]
    opp = make_opportunities(pd.concat([kept, added], ignore_index=True))
    pulled = opp["id"].astype(str).isin(d_ids).to_numpy()

    live = set(opp["id"].astype(str))
    hist = _merged_history(base.stage_history, delta.stage_history, live)
    if delta.meta.has_stage_history and len(hist):
        _rederive(opp, pulled, hist, base, delta)

    owners = pd.concat([base.owners, delta.owners], ignore_index=True)
    owners = make_owners(owners.drop_duplicates("id", keep="last"))

    extra = dict(delta.meta.extra)
    extra["merge"] = {
        "changed": int(b_ids.isin(d_ids).sum()),
        "added": int(len(d_ids - set(b_ids))),
        "removed": int(b_ids.isin(gone).sum()),
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


def _merged_history(base: pd.DataFrame, delta: pd.DataFrame, live: set[str]) -> pd.DataFrame:
    hist = pd.concat([base, delta], ignore_index=True)
    hist = hist[hist["opportunity_id"].astype(str).isin(live).to_numpy()]
    hist = hist.drop_duplicates(["opportunity_id", "stage", "source_stage", "entered_at"])
    hist = hist.sort_values(["opportunity_id", "entered_at"], kind="stable")
    # an entry into the stage the record was already in is no entry (e.g. an amount change)
    key = (
        hist["source_stage"]
        .astype(object)
        .where(hist["source_stage"].notna(), hist["stage"].astype(object))
    )
    same_opp = hist["opportunity_id"].eq(hist["opportunity_id"].shift())
    repeat = same_opp & key.eq(key.shift()).fillna(False)
    return make_stage_history(hist[~repeat.to_numpy()].reset_index(drop=True))


def _rederive(
    opp: pd.DataFrame, pulled: np.ndarray, hist: pd.DataFrame, base: Snapshot, delta: Snapshot
) -> None:
    """Re-derive stage_entered_at / close_date_changes of the pulled rows in place."""
    ids = opp["id"].astype(object)
    current = pd.Series(
        opp["source_stage"]
        .astype(object)
        .where(opp["source_stage"].notna(), opp["stage"].astype(object))
        .to_numpy(),
        index=ids.to_numpy(),
    )
    h_key = (
        hist["source_stage"]
        .astype(object)
        .where(hist["source_stage"].notna(), hist["stage"].astype(object))
    )
    h_ids = hist["opportunity_id"].astype(object)
    in_current = h_key.to_numpy() == current.reindex(h_ids.to_numpy()).to_numpy()
    entered = hist["entered_at"][in_current].groupby(h_ids[in_current].to_numpy()).max()
    new_entered = _lookup(ids, entered)
    fill = pulled & new_entered.notna().to_numpy()
    if fill.any():
        opp.loc[fill, "stage_entered_at"] = pd.to_datetime(new_entered[fill], utc=True).astype(
            opp["stage_entered_at"].dtype
        )

    # close-date changes: add the stored count where the pulled history is only new entries
    b_last = base.stage_history.groupby(base.stage_history["opportunity_id"].astype(object))[
        "entered_at"
    ].max()
    d_first = delta.stage_history.groupby(delta.stage_history["opportunity_id"].astype(object))[
        "entered_at"
    ].min()
    first_new, last_stored = _lookup(ids, d_first), _lookup(ids, b_last)
    only_new = (first_new.isna() | (first_new > last_stored)).fillna(True)
    b_changes = base.opportunities.set_index(base.opportunities["id"].astype(object))[
        "close_date_changes"
    ]
    stored = _lookup(ids, b_changes).astype("Int64")
    add = pulled & only_new.to_numpy(dtype=bool) & stored.notna().to_numpy()
    if add.any():
        opp.loc[add, "close_date_changes"] = (
            opp.loc[add, "close_date_changes"].fillna(0) + stored[add]
        ).astype("Int64")
