"""Merge an incremental pull into the last stored snapshot of the same source.

Contract (see ``connectors.base.Connector.pull``): an incremental pull returns only the records
changed since ``since``, sets ``meta.incremental = True`` and lists the ids of opportunities
deleted / archived since then in ``meta.extra["deleted_ids"]``.

Merge, by opportunity id: changed rows replace the stored ones, new rows are added, deleted ids
are removed (with their history). Stage history is the union of the stored and the pulled rows
of the kept opportunities, duplicates dropped, so a connector may return either the full history
of a changed record or only its new entries. Owners: pulled rows replace stored ones by id.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from auditor.snapshot import Snapshot, make_opportunities, make_owners, make_stage_history

#: keys of ``meta.extra`` that may list deleted opportunity ids ("deleted_ids" is the contract;
#: the others are accepted so a connector's own name does not lose deletions)
DELETED_KEYS = ("deleted_ids", "deleted_opportunity_ids", "archived_ids")


def deleted_ids(snap: Snapshot) -> set[str]:
    out: set[str] = set()
    for key in DELETED_KEYS:
        out.update(str(i) for i in snap.meta.extra.get(key) or ())
    return out


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

    live = set(opp["id"].astype(str))
    hist = pd.concat([base.stage_history, delta.stage_history], ignore_index=True)
    hist = hist[hist["opportunity_id"].astype(str).isin(live).to_numpy()]
    hist = hist.drop_duplicates(["opportunity_id", "stage", "source_stage", "entered_at"])
    hist = make_stage_history(hist.sort_values(["opportunity_id", "entered_at"], kind="stable"))

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
        reached_stages=delta.meta.reached_stages or base.meta.reached_stages,
        extra=extra,
    )
    return Snapshot(opp, hist, owners, meta).validate()
