"""Engine duties: violations table, coverage, fingerprints, selection, demo ground truth."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from auditor.config import parse_config
from auditor.engine import fingerprints, run_audit
from auditor.results import VIOLATION_COLUMNS
from auditor.snapshot import (
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_owners,
    make_stage_history,
)
from connectors.demo import generate_demo_org

AS_OF = date(2026, 6, 30)


def small_snapshot(provided: set[str], has_history: bool = True) -> Snapshot:
    opp = make_opportunities(
        pd.DataFrame(
            {
                "id": ["a", "b", "c"],
                "name": ["Alpha", "Beta", "Gamma"],
                "owner_id": ["u1", "u1", "u2"],
                "stage": ["closed_lost", "closed_lost", "proposal"],
                "is_closed": [True, True, False],
                "is_won": [False, False, False],
                "loss_reason": [None, "Price", None],
                "created_at": ["2026-01-01T00:00:00Z"] * 3,
            }
        )
    )
    hist = make_stage_history(
        pd.DataFrame(
            {
                "opportunity_id": ["c", "c"],
                "stage": ["contact", "proposal"],
                "entered_at": ["2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"],
            }
        )
    )
    meta = SnapshotMeta(
        "t",
        "test",
        provided_fields=frozenset(provided),
        has_stage_history=has_history,
        reached_stages=frozenset({"contact", "qualification", "proposal", "closed_lost"}),
    )
    return Snapshot(opp, hist, make_owners(), meta).validate()


def cfg(**rules: object):
    return parse_config({"source": {"type": "demo"}, "rules": rules}, origin="t.toml")


def test_violation_rows_and_columns() -> None:
    snap = small_snapshot({"stage", "loss_reason"})
    res = run_audit(snap, cfg(select=["CL01"]), as_of=AS_OF)
    assert list(res.violations.columns) == VIOLATION_COLUMNS
    assert res.violations[["rule_code", "opportunity_id", "opportunity_name", "owner_id"]].to_dict(
        "records"
    ) == [
        {"rule_code": "CL01", "opportunity_id": "a", "opportunity_name": "Alpha", "owner_id": "u1"}
    ]
    assert res.violations["message"].tolist() == ["closed lost with no loss reason"]


def test_field_the_source_lacks_makes_rule_not_evaluable() -> None:
    snap = small_snapshot({"stage"})  # no loss_reason from this source
    res = run_audit(snap, cfg(select=["CL01"]), as_of=AS_OF)
    assert res.violations.empty
    cov = res.coverage.set_index("rule_code").loc["CL01"]
    # CL01 applies to the two lost deals only; the open deal c is not counted at all
    assert (cov["applicable"], cov["evaluated"], cov["not_evaluable"]) == (2, 0, 2)
    assert cov["reasons"] == {"source does not provide loss_reason": 2}


def test_records_without_history_are_not_evaluable_for_history_rules() -> None:
    snap = small_snapshot({"stage"})
    res = run_audit(snap, cfg(select=["QL01"]), as_of=AS_OF)
    cov = res.coverage.set_index("rule_code").loc["QL01"]
    # QL01 applies only to deals that reached discovery or later: c (the lost deals a and b
    # never got past closed_lost's unknown path and are not counted)
    assert (cov["applicable"], cov["reasons"]) == (1, {})
    # c reached proposal from contact without qualification: flagged
    assert res.violations["opportunity_id"].tolist() == ["c"]
    snap = small_snapshot({"stage"}, has_history=False)
    res = run_audit(snap, cfg(select=["QL01"]), as_of=AS_OF)
    assert res.violations.empty
    assert res.coverage.iloc[0]["reasons"] == {"source has no stage history": 1}


def test_fingerprint_is_stable_and_distinct() -> None:
    a = fingerprints("src", pd.Series(["QL01", "QL01", "CL01"]), pd.Series(["x", "y", "x"]))
    b = fingerprints("src", pd.Series(["QL01"]), pd.Series(["x"]))
    assert a[0] == b[0]
    assert len(set(a)) == 3
    assert a[0] != fingerprints("other", pd.Series(["QL01"]), pd.Series(["x"]))[0]
    # pinned: a change to the hashing would break every stored history diff
    assert b[0] == fingerprints("src", pd.Series(["QL01"]), pd.Series(["x"]))[0]
    assert len(b[0]) == 16


def test_select_by_prefix_group_and_name_and_ignore() -> None:
    snap = small_snapshot({"stage", "loss_reason"})
    codes = lambda res: [r.code for r in res.rules]  # noqa: E731
    closing = ["CL01", "CL02", "CL03"]  # the whole closing group of the catalogue
    assert codes(run_audit(snap, cfg(select=["closing"]), as_of=AS_OF)) == closing
    assert codes(run_audit(snap, cfg(select=["CL"]), as_of=AS_OF)) == closing
    assert codes(run_audit(snap, cfg(select=["missing-loss-reason"]), as_of=AS_OF)) == ["CL01"]
    assert "CL01" not in codes(run_audit(snap, cfg(ignore=["CL01"]), as_of=AS_OF))


@pytest.mark.parametrize("code", ["QL01", "FU01", "ST04", "CL01"])
def test_foundation_rules_match_demo_ground_truth(code: str) -> None:
    org = generate_demo_org(2000, seed=11, as_of=AS_OF)
    res = run_audit(org.snapshot, cfg(select=[code]), as_of=AS_OF)
    flagged = set(res.violations["opportunity_id"]) | set(res.process["opportunity_id"])
    truth = org.ground_truth[code]
    assert truth, f"the demo plants no {code} violations"
    tp = len(flagged & truth)
    precision = tp / len(flagged) if flagged else 1.0
    recall = tp / len(truth)
    print(f"{code}: precision {precision:.0%} recall {recall:.0%} ({len(truth)} planted)")
    assert flagged == truth


def test_prepare_runs_before_evaluate_and_its_errors_name_the_rule() -> None:
    from auditor.errors import AuditorError
    from auditor.rule import Rule

    calls: list[str] = []

    class Prepared(Rule):
        """Test rule.

        Why it matters: test.

        How to fix: test.
        """

        code = "ZZ01"
        name = "prepared"

        def prepare(self, snap, ctx) -> None:  # noqa: ANN001
            calls.append("prepare")
            snap.memo.get(("rule", "ZZ01", "zz"), lambda: snap.opportunities["id"] == "a")

        def evaluate(self, snap, ctx):  # noqa: ANN001, ANN201
            calls.append("evaluate")
            return snap.memo.get(("rule", "ZZ01", "zz"), lambda: None)

    class Broken(Prepared):
        """Test rule whose prepare fails.

        Why it matters: test.

        How to fix: test.
        """

        code = "ZZ02"
        name = "broken"

        def prepare(self, snap, ctx) -> None:  # noqa: ANN001
            raise ValueError("boom")

    snap = small_snapshot({"stage"})
    res = run_audit(snap, cfg(), as_of=AS_OF, rules=[Prepared()])
    assert calls == ["prepare", "evaluate"]
    # a is a lost deal: the finding is process history (ZZ01 is no close-out rule)
    assert res.violations.empty
    assert res.process["opportunity_id"].tolist() == ["a"]
    with pytest.raises(AuditorError, match=r"rule ZZ02 \(broken\) failed on this snapshot: boom"):
        run_audit(small_snapshot({"stage"}), cfg(), as_of=AS_OF, rules=[Broken()])


def test_stale_data_and_import_notes() -> None:
    """#14: the reader is told when the data ends long before the audit day, and which records
    an import created (five or more created in one second, history starting then)."""
    rows = [
        {"id": f"I{i}", "stage": "closed_won", "is_closed": True, "is_won": True,
         "created_at": "2025-06-02T09:15:00Z", "updated_at": "2025-06-02T09:15:00Z"}
        for i in range(5)
    ] + [{"id": "N", "stage": "proposal", "is_closed": False, "is_won": False,
          "created_at": "2025-06-03T10:11:12Z", "updated_at": "2025-07-01T08:00:00Z"}]
    opp = make_opportunities(pd.DataFrame(rows))
    hist = make_stage_history(pd.DataFrame(
        [{"opportunity_id": f"I{i}", "stage": "closed_won",
          "entered_at": "2025-06-02T09:15:00Z"} for i in range(5)]
        + [{"opportunity_id": "N", "stage": "proposal", "entered_at": "2025-06-03T10:11:12Z"}]
    ))
    meta = SnapshotMeta("t", "test", provided_fields=frozenset({"stage"}),
                        has_stage_history=True, reached_stages=frozenset({"qualification"}))
    snap = Snapshot(opp, hist, make_owners(), meta).validate()
    res = run_audit(snap, cfg(select=["QL01"]), as_of=AS_OF)
    assert res.notes == [
        "5 records look imported on 2025-06-02; their stage history starts there",
        "the newest change in the data is on 2025-07-01, 364 days before the audit day "
        "2026-06-30: ages and overdue dates are measured to the audit day (set audit.as_of to "
        "audit the data as of then)",
    ]
    cov = res.coverage.set_index("rule_code").loc["QL01"]
    assert cov["reasons"] == {
        "history starts at an import, past qualification": 5,
        "history starts past qualification (created there)": 1,
    }


def test_memo_builds_each_key_once_across_threads() -> None:
    import threading
    import time

    from auditor.memo import Memo

    memo = Memo()
    builds: list[str] = []

    def slow() -> int:
        builds.append("slow")
        time.sleep(0.2)
        return 42

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(memo.get("k", slow)))
               for _ in range(4)]
    for t in threads:
        t.start()
    # another key builds while "k" is being built: keys do not wait for each other
    t0 = time.perf_counter()
    assert memo.get("other", lambda: 7) == 7
    assert time.perf_counter() - t0 < 0.15
    for t in threads:
        t.join()
    assert results == [42, 42, 42, 42] and builds == ["slow"]
    assert "k" in memo and "missing" not in memo


def test_a_copied_snapshot_does_not_share_derived_values() -> None:
    from dataclasses import replace

    from auditor.derived import visited

    snap = small_snapshot({"stage"})
    visited(snap)
    assert ("derived", "visited") in snap.memo
    copy = replace(snap, opportunities=snap.opportunities.copy())
    assert ("derived", "visited") not in copy.memo


def test_rule_only_caches_are_freed_before_the_metrics_and_rebuilt_when_asked_again() -> None:
    from auditor.derived import transitions

    snap = generate_demo_org(500, seed=3, as_of=AS_OF).snapshot
    first = run_audit(snap, cfg(), as_of=AS_OF)
    keys = list(snap.memo._values)
    assert not [k for k in keys if k[0] == "rule"]
    for gone in ("transitions", "regressions", "jumped_over", "history_rows"):
        assert ("derived", gone) not in snap.memo
    for kept in ("history_positions", "visited", "has_history"):
        assert ("derived", kept) in snap.memo  # the metrics read these
    assert len(transitions(snap)) > 0  # a freed value is rebuilt on demand
    again = run_audit(snap, cfg(), as_of=AS_OF)
    assert sorted(again.violations["fingerprint"]) == sorted(first.violations["fingerprint"])
    assert sorted(again.process["fingerprint"]) == sorted(first.process["fingerprint"])
