"""The whole pipeline at 20,000 opportunities keeps the large-org code path exercised in CI.

Not timed (benchmarks are scripts/benchmark.py); it checks that every phase runs at this size
and that the outputs stay proportionate: the HTML reports list the worst deals, the CSV / JSON
list every finding.
"""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

from auditor.app.run import execute
from auditor.config import parse_config
from connectors.demo import generate_demo_org

AS_OF = date(2026, 6, 30)


def test_full_pipeline_at_20k(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "source": {"type": "demo", "size": 20_000, "seed": 3},
            "audit": {"as_of": AS_OF},
            "report": {"out_dir": "out", "max_deals": 25},
            "history": {"path": "history.sqlite"},
        },
        origin="<test>",
        base_dir=tmp_path,
    )
    run = execute(cfg, as_of=AS_OF)
    out = tmp_path / "out"
    org = generate_demo_org(20_000, seed=3, as_of=AS_OF)
    planted = sum(len(v) for v in org.ground_truth.values())
    assert len(run.snapshot.opportunities) == 20_000
    # every planted finding is either a to-do or process history (a closed deal's past)
    todo, process = len(run.result.violations), len(run.result.process)
    assert todo + process == planted and process > 0
    with (out / "violations.csv").open(newline="", encoding="utf-8") as f:
        assert sum(1 for _ in csv.DictReader(f)) == todo
    with (out / "process_findings.csv").open(newline="", encoding="utf-8") as f:
        assert sum(1 for _ in csv.DictReader(f)) == process
    assert len(json.loads((out / "violations.json").read_text())) == todo
    html = (out / "report.html").read_text(encoding="utf-8")
    # proportionate: the e-mail lists the 10 worst deals to fix now (the text report
    # max_deals), never thousands, and stays under Gmail's clip
    assert html.count('<a href="https://demo-crm.invalid/opportunities/') == 10
    assert (out / "report.html").stat().st_size < 100_000
    text = (out / "report.txt").read_text(encoding="utf-8")
    assert "DEALS TO FIX, WORST FIRST (25 of" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["counts"]["opportunities"] == 20_000
    assert set(run.timings) >= {"pull", "rules", "metrics", "reports"}
