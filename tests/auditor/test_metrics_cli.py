"""`crm-audit run` on the demo org writes metrics.json with every metric."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from auditor.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[2]


def test_run_writes_metrics_json(tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "auditor.app.cli", "run", "--as-of", "2026-11-26",
         "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert data["as_of"] == "2026-11-26"
    assert [p["label"] for p in data["periods"]] == ["2026-Q3", "2026-Q4"]
    for name in METRIC_NAMES:
        assert data[name]["name"] == name
        assert data[name]["available"] is True, data[name].get("reason")
        assert data[name]["definition"]
    # the demo org closes deals in both quarters and has open pipeline in the current one
    assert data["win_rate"]["by_period"]["2026-Q3"]["won"] > 0
    assert data["pipeline_coverage"]["by_period"]["2026-Q4"]["open_deals"] > 0
    assert 0 <= data["hygiene_score"]["org"] <= 100
