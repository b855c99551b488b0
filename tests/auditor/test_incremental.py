"""Incremental pulls merged into the stored snapshot (issue 7, item 4).

The connector here is a fake that plays a CRM changing between two nightly runs; the
Salesforce / HubSpot acceptance variants live with those connectors' tests.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pandas as pd

from auditor.app.run import execute
from auditor.history import HistoryStore
from auditor.incremental import merge_incremental
from auditor.snapshot import Snapshot, make_opportunities, make_stage_history
from connectors.demo import generate_demo_org
from tests.auditor.conftest import AS_OF, make_config

DAY = date.fromisoformat(AS_OF)
NOW = pd.Timestamp("2026-06-15T08:00:00Z")


class ChangingCrm:
    """Two states of one org and what an incremental pull of the second returns."""

    def __init__(self) -> None:
        org = generate_demo_org(900, seed=5, as_of=DAY)
        self.before = org.snapshot
        opp = self.before.opportunities.copy()
        hist = self.before.stage_history.copy()
        ids = opp["id"]
        truth = org.ground_truth
        flagged = set().union(*truth.values())
        # lost deals without a reason and no other finding: one CL01 finding each
        # closed within the 90-day fix window, so the finding is a to-do (older ones are
        # process history and never "resolved")
        recent = set(ids[(pd.Timestamp(DAY) - opp["close_date"]).dt.days <= 90])
        only_cl01 = sorted((truth["CL01"] - (flagged - truth["CL01"])) & recent)
        fixed, self.deleted = only_cl01[:3], only_cl01[3:5]
        open_props = ids[(opp["stage"] == "proposal") & ~opp["is_closed"].astype(bool)]
        moved = sorted(set(open_props) - flagged)[0]  # a clean deal moves on
        template = sorted(set(ids) - flagged)[10]  # the new deal is clean too
        opp.loc[ids.isin(fixed), "loss_reason"] = "Timing"
        at_moved = ids == moved
        opp.loc[at_moved, ["stage", "source_stage"]] = "negotiation"
        opp.loc[at_moved, "stage_entered_at"] = NOW
        new_hist = make_stage_history(
            pd.DataFrame(
                {
                    "opportunity_id": [moved],
                    "stage": ["negotiation"],
                    "source_stage": ["negotiation"],
                    "entered_at": [NOW],
                }
            )
        )
        new = opp[ids == template].copy()
        new["id"] = "OPP-NEW"
        new["name"] = "A brand-new deal"  # not a duplicate of the one it was copied from
        new_hist = pd.concat(
            [new_hist, hist[hist["opportunity_id"] == template].assign(opportunity_id="OPP-NEW")],
            ignore_index=True,
        )
        self.changed = [*fixed, moved]
        opp = opp[~ids.isin(self.deleted)]
        opp = make_opportunities(pd.concat([opp, new], ignore_index=True))
        opp.loc[opp["id"].isin(self.changed), "updated_at"] = NOW
        hist = hist[~hist["opportunity_id"].isin(self.deleted)]
        self.after = Snapshot(
            opp,
            make_stage_history(pd.concat([hist, new_hist], ignore_index=True)),
            self.before.owners,
            replace(self.before.meta),
        ).validate()
        delta_ids = [*self.changed, "OPP-NEW"]
        self.delta = Snapshot(
            make_opportunities(opp[opp["id"].isin(delta_ids)]),
            make_stage_history(new_hist),
            self.before.owners.head(3),
            replace(self.before.meta, incremental=True, deleted_ids=list(self.deleted)),
        ).validate()

    def pull_second(self, since: datetime | None) -> Snapshot:
        return self.after if since is None else self.delta


def _sorted(df: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return df.sort_values(by, kind="stable").reset_index(drop=True)


def test_merge_equals_the_full_pull():
    crm = ChangingCrm()
    merged = merge_incremental(crm.before, crm.delta)
    pd.testing.assert_frame_equal(
        _sorted(merged.opportunities, ["id"]), _sorted(crm.after.opportunities, ["id"])
    )
    keys = ["opportunity_id", "entered_at", "stage"]
    pd.testing.assert_frame_equal(
        _sorted(merged.stage_history, keys), _sorted(crm.after.stage_history, keys)
    )
    assert merged.meta.incremental is True
    assert merged.meta.extra["merge"] == {
        "changed": 4,
        "added": 1,
        "removed": 2,
        "base_pulled_at": crm.before.meta.pulled_at.isoformat(),
    }
    assert len(merged.owners) == len(crm.before.owners)


def test_second_run_pulls_changes_since_the_first_and_finds_the_same_violations(tmp_path, scripted):
    crm = ChangingCrm()
    scripted.script = [crm.before, crm.pull_second]
    cfg = make_config(tmp_path)
    execute(cfg, out_dir=tmp_path / "out")
    with HistoryStore(tmp_path / "history.sqlite") as store:
        since = store.last_snapshot("demo").pull_started_at
    inc = execute(cfg, out_dir=tmp_path / "out")
    assert scripted.calls == [None, since]
    assert inc.snapshot.meta.incremental is True
    assert inc.facts()["incremental"] is True
    # three loss reasons filled in, two lost deals deleted; the moved and the new deal are clean
    assert (inc.history.to_dict()["resolved"], inc.history.to_dict()["new"]) == (5, 0)

    # the same audit over a full pull of the second state, in a separate store
    scripted.script = [crm.after]
    full = execute(make_config(tmp_path / "full"), out_dir=tmp_path / "full" / "out")
    assert scripted.calls[-1] is None
    cols = ["fingerprint", "rule_code", "opportunity_id", "message"]
    pd.testing.assert_frame_equal(
        _sorted(inc.result.violations[cols], ["fingerprint"]),
        _sorted(full.result.violations[cols], ["fingerprint"]),
    )
    assert inc.score == full.score

    with HistoryStore(tmp_path / "history.sqlite") as store:
        assert [r["incremental"] for r in store.runs()] == [True, False]
        # the stored snapshot is now the merged one: a third run merges on top of it
        stored = store.last_snapshot("demo").snapshot
    assert sorted(stored.opportunities["id"]) == sorted(crm.after.opportunities["id"])


def test_full_flag_forces_a_full_pull(tmp_path, scripted):
    crm = ChangingCrm()
    scripted.script = [crm.before, crm.pull_second]
    cfg = make_config(tmp_path)
    execute(cfg, out_dir=tmp_path / "out")
    run = execute(cfg, out_dir=tmp_path / "out", full=True)
    assert scripted.calls == [None, None]
    assert run.snapshot.meta.incremental is False


def test_connector_without_incremental_mode_returns_a_full_snapshot_used_as_is(tmp_path, scripted):
    crm = ChangingCrm()
    scripted.script = [crm.before, crm.after]  # ignores `since`, like CSV and demo
    cfg = make_config(tmp_path)
    execute(cfg, out_dir=tmp_path / "out")
    run = execute(cfg, out_dir=tmp_path / "out")
    assert scripted.calls[1] is not None
    assert run.snapshot.meta.incremental is False
    assert len(run.snapshot.opportunities) == len(crm.after.opportunities)


def test_unreadable_stored_snapshot_falls_back_to_a_full_pull(tmp_path, scripted, caplog):
    crm = ChangingCrm()
    scripted.script = [crm.before, crm.after]
    cfg = make_config(tmp_path)
    execute(cfg, out_dir=tmp_path / "out")
    with HistoryStore(tmp_path / "history.sqlite") as store:
        store.conn.execute("UPDATE snapshots SET format = 'pickle/0'")
    run = execute(cfg, out_dir=tmp_path / "out")
    assert scripted.calls == [None, None]
    assert run.snapshot.meta.incremental is False
    assert "format 'pickle/0'" in caplog.text


def test_deleted_ids_are_removed_with_their_history():
    crm = ChangingCrm()
    merged = merge_incremental(crm.before, crm.delta)
    assert not merged.opportunities["id"].isin(crm.deleted).any()
    assert not merged.stage_history["opportunity_id"].isin(crm.deleted).any()


def test_only_the_typed_deleted_ids_field_removes_records():
    """The old dict keys are no contract any more: ids there are ignored, not half-honoured."""
    crm = ChangingCrm()
    meta = replace(crm.delta.meta, deleted_ids=[],
                   extra={"deleted_ids": crm.deleted, "archived_ids": crm.deleted})
    merged = merge_incremental(crm.before, replace(crm.delta, meta=meta))
    assert merged.opportunities["id"].isin(crm.deleted).sum() == len(crm.deleted)


def _one(stage: str, entered: str, changes: int, history: list[tuple[str, str]]) -> Snapshot:
    from auditor.snapshot import SnapshotMeta, make_owners
    from auditor.stages import STAGES

    opp = make_opportunities(
        pd.DataFrame(
            {
                "id": ["A"],
                "name": ["Deal A"],
                "stage": [stage],
                "source_stage": [stage],
                "stage_entered_at": [pd.Timestamp(entered, tz="UTC") if entered else pd.NaT],
                "close_date_changes": [changes],
            }
        )
    )
    hist = make_stage_history(
        pd.DataFrame(
            {
                "opportunity_id": ["A"] * len(history),
                "stage": [s for s, _ in history],
                "source_stage": [s for s, _ in history],
                "entered_at": [pd.Timestamp(t, tz="UTC") for _, t in history],
            }
        )
    )
    meta = SnapshotMeta(
        source="sf",
        source_type="salesforce",
        has_stage_history=True,
        reached_stages=frozenset(STAGES),
    )
    return Snapshot(opp, hist, make_owners(), meta).validate()


def test_partial_history_is_completed_from_the_stored_one():
    base = _one(
        "proposal", "2026-03-01", 2, [("discovery", "2026-02-01"), ("proposal", "2026-03-01")]
    )
    # only the row written since the last pull: an amount change, stage unchanged, and one close
    # date push counted by the connector from that row alone
    delta = _one("proposal", "2026-06-10", 1, [("proposal", "2026-06-10")])
    delta = replace(delta, meta=replace(delta.meta, incremental=True))
    merged = merge_incremental(base, delta)
    assert merged.stage_history["entered_at"].tolist() == [
        pd.Timestamp("2026-02-01", tz="UTC"),
        pd.Timestamp("2026-03-01", tz="UTC"),
    ]
    row = merged.opportunities.iloc[0]
    assert row["stage_entered_at"] == pd.Timestamp("2026-03-01", tz="UTC")
    assert row["close_date_changes"] == 3


def test_full_history_of_a_changed_record_is_taken_as_it_is():
    base = _one(
        "proposal", "2026-03-01", 2, [("discovery", "2026-02-01"), ("proposal", "2026-03-01")]
    )
    delta = _one(
        "negotiation",
        "2026-06-10",
        2,
        [("discovery", "2026-02-01"), ("proposal", "2026-03-01"), ("negotiation", "2026-06-10")],
    )
    delta = replace(delta, meta=replace(delta.meta, incremental=True))
    merged = merge_incremental(base, delta)
    assert merged.stage_history["stage"].astype(str).tolist() == [
        "discovery",
        "proposal",
        "negotiation",
    ]
    row = merged.opportunities.iloc[0]
    assert row["stage_entered_at"] == pd.Timestamp("2026-06-10", tz="UTC")
    assert row["close_date_changes"] == 2  # the pulled count already covers the whole history


def test_merged_history_follows_the_row_order_and_keeps_untouched_rows_as_stored():
    """The merge keeps the stored rows of untouched records as they are and appends the changed
    records' history in their row order, so the engine's join finds the history in order."""
    crm = ChangingCrm()
    merged = merge_incremental(crm.before, crm.delta)
    row = pd.Series(range(len(merged.opportunities)), index=merged.opportunities["id"])
    h = merged.stage_history
    pos = h["opportunity_id"].map(row).to_numpy()
    assert (pos[1:] >= pos[:-1]).all()
    touched = {*crm.changed, "OPP-NEW", *crm.deleted}
    stored = crm.before.stage_history
    untouched = stored[~stored["opportunity_id"].isin(touched)].reset_index(drop=True)
    pd.testing.assert_frame_equal(h.head(len(untouched)), untouched)
    # the changed records come last, in the pull's order, their history after the stored rows
    assert merged.opportunities["id"].tail(len(crm.delta.opportunities)).tolist() == (
        crm.delta.opportunities["id"].tolist())


def test_a_pull_without_history_keeps_the_stored_history_of_changed_records():
    crm = ChangingCrm()
    delta = replace(crm.delta, stage_history=make_stage_history(),
                    meta=replace(crm.delta.meta, has_stage_history=False))
    merged = merge_incremental(crm.before, delta)
    stored = crm.before.stage_history
    expected = stored[~stored["opportunity_id"].isin(crm.deleted)].reset_index(drop=True)
    pd.testing.assert_frame_equal(merged.stage_history, expected)
    assert merged.meta.has_stage_history is True  # the stored snapshot had it
