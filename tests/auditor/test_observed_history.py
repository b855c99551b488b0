"""Stage history observed between runs for sources that have none (issue 7, item 3)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from auditor.app.run import execute
from auditor.snapshot import Snapshot, SnapshotMeta, make_opportunities, make_owners
from auditor.stages import STAGES
from tests.auditor.conftest import make_config

DAY1 = date(2026, 6, 1)
CREATED = "2026-03-02T10:00:00Z"


def _csv_like(stages: dict[str, str], created: dict[str, str] | None = None) -> Snapshot:
    """A snapshot shaped like a CSV export: current stage only, no stage history."""
    created = created or {}
    ids = sorted(stages)
    opp = make_opportunities(
        pd.DataFrame(
            {
                "id": ids,
                "source": "demo",
                "name": [f"Deal {i}" for i in ids],
                "owner_id": "U1",
                "stage": [stages[i] for i in ids],
                "source_stage": [stages[i].title() for i in ids],
                "is_closed": False,
                "is_won": False,
                "amount": 1000.0,
                "created_at": [created.get(i, CREATED) for i in ids],
                "next_step": "Call",
            }
        )
    )
    meta = SnapshotMeta(
        source="demo",
        source_type="csv",
        provided_fields=frozenset(
            [
                "id",
                "name",
                "owner_id",
                "stage",
                "source_stage",
                "is_closed",
                "is_won",
                "amount",
                "created_at",
                "next_step",
            ]
        ),
        has_stage_history=False,
        reached_stages=frozenset(STAGES),
    )
    owners = make_owners(pd.DataFrame({"id": ["U1"], "name": ["Ann Lee"]}))
    return Snapshot(opp, make_stage_history_empty(), owners, meta).validate()


def make_stage_history_empty() -> pd.DataFrame:
    from auditor.snapshot import make_stage_history

    return make_stage_history()


def _ql01(run) -> set[str]:  # noqa: ANN001
    v = run.result.violations
    return set(v.loc[v["rule_code"] == "QL01", "opportunity_id"])


def _coverage(run, code: str) -> dict:  # noqa: ANN001
    cov = run.result.coverage.set_index("rule_code")
    return cov.loc[code].to_dict()


def test_deal_moving_contact_to_discovery_over_three_snapshots_is_flagged_by_ql01(
    tmp_path, scripted
):
    snaps = [
        # D1 skips qualification between run 2 and run 3; D2 goes through it; D3 was already in
        # discovery when first seen (its past is unknown); D4 appears (created after run 1)
        # directly in proposal.
        _csv_like({"D1": "contact", "D2": "contact", "D3": "discovery"}),
        _csv_like(
            {"D1": "contact", "D2": "qualification", "D3": "discovery", "D4": "proposal"},
            created={"D4": "2026-06-01T15:00:00Z"},
        ),
        _csv_like(
            {"D1": "discovery", "D2": "discovery", "D3": "proposal", "D4": "proposal"},
            created={"D4": "2026-06-01T15:00:00Z"},
        ),
    ]
    scripted.script = list(snaps)
    cfg = make_config(tmp_path, report={"formats": ["json"]})
    runs = [
        execute(cfg, out_dir=tmp_path / "out", as_of=DAY1 + timedelta(days=i)) for i in range(3)
    ]

    # D4 was created directly in proposal (a converted lead, a record created by an
    # integration): its path starts past qualification and is not judged by default (#14)
    assert [_ql01(r) for r in runs] == [set(), set(), {"D1"}]
    last = runs[2]
    assert last.snapshot.meta.has_stage_history is True
    # D3 has no anchored history: not evaluable, not flagged; D2 went through qualification
    cov = _coverage(last, "QL01")
    assert (cov["applicable"], cov["evaluated"], cov["not_evaluable"]) == (4, 2, 2)
    assert cov["reasons"] == {
        "record has no stage history": 1,
        "history starts past qualification (created there)": 1,
    }
    hist = last.snapshot.stage_history
    d1 = hist[hist["opportunity_id"] == "D1"]
    assert d1["stage"].astype(str).tolist() == ["contact", "discovery"]
    assert d1["entered_at"].tolist() == [
        pd.Timestamp("2026-06-01", tz="UTC"),  # first seen: no stage_entered_at → audit day
        pd.Timestamp("2026-06-03", tz="UTC"),  # the change was observed on day 3
    ]
    d4 = hist[hist["opportunity_id"] == "D4"]
    assert d4["entered_at"].tolist() == [pd.Timestamp("2026-06-01T15:00:00Z")]  # created_at
    # the exact entry dates fill stage_entered_at, which the source does not provide
    opp = last.snapshot.opportunities.set_index("id")
    assert opp.loc["D1", "stage_entered_at"] == pd.Timestamp("2026-06-03", tz="UTC")
    # D3's past is unknown, but its move to proposal was observed: that date is exact
    assert opp.loc["D3", "stage_entered_at"] == pd.Timestamp("2026-06-03", tz="UTC")
    assert opp.loc["D4", "stage_entered_at"] == pd.Timestamp("2026-06-01T15:00:00Z")
    assert "stage_entered_at" in last.snapshot.meta.provided_fields
    assert last.snapshot.meta.extra["observed_stage_history"] == {
        "records_with_history": 3,
        "records_without": 1,
        "entries": 6,
        "stage_entered_at_filled": 4,
    }


def test_first_run_of_a_source_without_history_flags_nothing_on_unknown_pasts(tmp_path, scripted):
    scripted.script = [_csv_like({"A": "proposal", "B": "negotiation", "C": "lead"})]
    run = execute(make_config(tmp_path), out_dir=tmp_path / "out", as_of=DAY1)
    assert _ql01(run) == set()
    cov = _coverage(run, "QL01")
    # QL01 applies to A and B (past qualification), neither has a known past; C is a lead
    assert (cov["applicable"], cov["evaluated"], cov["not_evaluable"]) == (2, 0, 2)


def test_observed_history_is_dated_in_the_audit_time_zone(tmp_path, scripted):
    scripted.script = [_csv_like({"A": "contact"}), _csv_like({"A": "qualification"})]
    cfg = make_config(tmp_path, audit={"timezone": "Europe/Berlin"})
    execute(cfg, out_dir=tmp_path / "out", as_of=DAY1)
    run = execute(cfg, out_dir=tmp_path / "out", as_of=DAY1 + timedelta(days=1))
    entered = run.snapshot.stage_history["entered_at"].tolist()
    # midnight in Berlin (CEST, UTC+2) on each audit day
    assert entered == [pd.Timestamp("2026-05-31T22:00Z"), pd.Timestamp("2026-06-01T22:00Z")]


def test_failed_run_does_not_store_its_observations(tmp_path, scripted):
    from auditor.errors import SourceDataError
    from auditor.history import HistoryStore

    scripted.script = [
        _csv_like({"A": "contact"}),
        SourceDataError("deals.csv row 3: bad date"),
        _csv_like({"A": "discovery"}),
    ]
    cfg = make_config(tmp_path)
    execute(cfg, out_dir=tmp_path / "out", as_of=DAY1)
    with pytest.raises(SourceDataError):
        execute(cfg, out_dir=tmp_path / "out", as_of=DAY1 + timedelta(days=1))
    run = execute(cfg, out_dir=tmp_path / "out", as_of=DAY1 + timedelta(days=2))
    assert _ql01(run) == {"A"}
    with HistoryStore(tmp_path / "history.sqlite") as store:
        rows = store.derived_history("demo")
    assert rows[["opportunity_id", "stage", "basis"]].values.tolist() == [
        ["A", "contact", "first_seen"],
        ["A", "discovery", "change"],
    ]


def test_real_csv_source_over_three_exports_flags_the_deal_that_skipped_qualification(tmp_path):
    """Acceptance: the CSV connector, a nightly export rewritten between runs."""
    from auditor.config import load_config

    cfg_path = tmp_path / "audit.toml"
    cfg_path.write_text(
        '[source]\ntype = "csv"\nname = "client-export"\nopportunities = "deals.csv"\n'
        "[source.stage_map]\n"
        'Contact = "contact"\nQualification = "qualification"\nDiscovery = "discovery"\n'
        'Proposal = "proposal"\n'
        '[history]\npath = "history.sqlite"\n[report]\nformats = ["json"]\n'
    )
    exports = [
        {"D1": "Contact", "D2": "Contact", "D3": "Discovery"},
        {"D1": "Contact", "D2": "Qualification", "D3": "Discovery"},
        {"D1": "Discovery", "D2": "Discovery", "D3": "Proposal"},
    ]
    flagged = []
    for i, stages in enumerate(exports):
        rows = "".join(
            f"{d},Deal {d},u1,{s},2026-03-02T10:00:00Z,false,false,Call\n"
            for d, s in stages.items()
        )
        (tmp_path / "deals.csv").write_text(
            "id,name,owner_id,stage,created_at,is_closed,is_won,next_step\n" + rows
        )
        run = execute(
            load_config(cfg_path), out_dir=tmp_path / "out", as_of=DAY1 + timedelta(days=i)
        )
        assert run.snapshot.meta.source_type == "csv"
        flagged.append(_ql01(run))
    assert flagged == [set(), set(), {"D1"}]
    cov = _coverage(run, "QL01")
    assert (cov["evaluated"], cov["not_evaluable"]) == (2, 1)  # D3 was first seen in discovery
    v = run.result.violations
    assert v.loc[v["rule_code"] == "QL01", "message"].tolist() == [
        "reached discovery without a qualification stage in its history"
    ]
