"""The benchmark's nightly incremental run (scripts/bench_incremental.py) at a small size, end
to end: the stored run seeded through the store's API, the fake org on https://127.0.0.1 in
its own process, execute() as `crm-audit run` does it. Every check the benchmark reports must
hold: both queries carry the bookmark, the merge counts exactly what was planted, and the calls
equal the documented formula."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_incremental  # noqa: E402
import benchmark  # noqa: E402

N = 3000


@pytest.mark.slow
def test_incremental_night_checks_hold_and_calls_follow_the_formula(tmp_path: Path) -> None:
    benchmark.save_snapshot(N, tmp_path / f"snapshot-{N}")
    info = bench_incremental.setup(N, tmp_path, benchmark.AS_OF)
    assert info["expect"]["changed"] == 30 and info["expect"]["deleted"] == 25
    out = bench_incremental.measure(N, tmp_path, benchmark.AS_OF)
    assert out["checks"] == {k: True for k in out["checks"]}, out["checks"]
    # 1 stage metadata + 1 describe + 1 user page + 1 opportunity page + 1 history page
    # + 1 deleted resource
    assert out["api_calls"] == out["predicted_calls"] == out["requests_served"] == 6
    assert out["merge"] == {"changed": 30, "added": 0, "removed": 25}
    assert set(out["pull_detail_s"]) == {"stored_snapshot", "changes", "merge"}
    assert set(out["phases_s"]) >= {"pull", "rules", "metrics", "history_diff", "reports",
                                     "history_store"}


def test_predicted_calls_follow_the_documented_formula() -> None:
    # docs/connectors/salesforce.md: 1 + 1 + ceil(users/2000) + max(1, ceil(M/2000))
    # + max(1, ceil(H/2000)) + 1
    assert bench_incremental.predicted_calls(7146, 10_015, 10_000) == 18
    assert bench_incremental.predicted_calls(75, 0, 0) == 6
    assert bench_incremental.predicted_calls(2000, 2001, 4000) == 1 + 1 + 1 + 2 + 2 + 1
