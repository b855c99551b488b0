"""`crm-audit run` on the demo org writes metrics.json with every metric."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.app.cli import main
from auditor.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[2]


def test_run_writes_metrics_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "report"
    monkeypatch.chdir(ROOT)  # in this process: metrics.json is the point, not the process
    res = CliRunner().invoke(main, ["run", "--as-of", "2026-11-26", "--out", str(out)])
    assert res.exit_code == 0, res.stderr
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
