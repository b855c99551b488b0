"""Metrics are shown by shape, whatever the metrics module puts in them, and never crash."""

from __future__ import annotations

from pathlib import Path

from reports.metric_view import metric_view, metric_views
from reports.render import write_reports
from tests.reports.reports_fixture import make_run


def test_scalars_become_facts_with_percentages_for_shares() -> None:
    v = metric_view(
        "win_rate",
        {"name": "win_rate", "definition": "Won ÷ closed.", "value": 0.25, "won": 1, "n": None},
    )
    assert v["title"] == "Win rate" and v["definition"] == "Won ÷ closed."
    assert v["facts"] == [
        {"label": "Value", "value": "25.0 %"},
        {"label": "Won", "value": "1"},
        {"label": "N", "value": "—"},
    ]


def test_dict_of_numbers_becomes_a_chart_with_labels() -> None:
    v = metric_view(
        "stage_velocity",
        {"name": "stage_velocity", "definition": "d", "median_days": {"proposal": 20, "lead": 5}},
        labels={"proposal": "Proposal"},
    )
    (chart,) = v["charts"]
    assert chart["rows"] == [
        {"label": "Proposal", "value": "20", "width": 100.0},
        {"label": "lead", "value": "5", "width": 25.0},
    ]


def test_scores_are_drawn_on_a_0_to_100_scale() -> None:
    v = metric_view("hygiene_score", {"name": "hygiene_score", "by_team": {"A": 50.0, "B": 25.0}})
    assert [r["width"] for r in v["charts"][0]["rows"]] == [50.0, 25.0]


def test_nested_and_odd_shapes_become_tables_or_text() -> None:
    v = metric_view(
        "loss_reasons",
        {
            "name": "loss_reasons",
            "by_period": {"Q3": {"count": 4, "share": 0.5}, "Q4": 7},
            "rows": [{"reason": "Price", "n": 3}, {"reason": "Other", "extra": [1, 2]}],
            "tags": ["a", "b"],
            "empty": {},
            "labels": {"x": "y"},
        },
    )
    assert v["definition"] == ""  # missing definition renders as nothing
    by_period, rows, labels = v["tables"]
    assert by_period["columns"] == ["Count", "Share", "Value"]
    assert [r["cells"] for r in by_period["rows"]] == [["4", "50.0 %", "—"], ["—", "—", "7"]]
    assert rows["columns"] == ["Reason", "N", "Extra"]
    assert rows["rows"][1]["cells"] == ["Other", "—", "[1, 2]"]
    assert labels["rows"][0]["cells"] == ["y"]
    assert {"label": "Tags", "value": "a, b"} in v["facts"]
    assert {"label": "Empty", "value": "—"} in v["facts"]


def test_metric_views_skip_as_of_and_gather_loose_values() -> None:
    views = metric_views({"as_of": "2026-01-01", "period": "2026-Q1", "c": {"n": 1}})
    assert [v["key"] for v in views] == ["c", "other"]
    assert views[1]["facts"] == [{"label": "Period", "value": "2026-Q1"}]
    assert metric_views({}) == [] and metric_views(None) == []


def test_reports_render_with_unusual_or_missing_metrics(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.metrics = {"weird": {"deep": {"a": {"b": {"c": 1}}}}, "period": None}
    write_reports(run, tmp_path / "o")  # no hygiene_score, no counts: still renders
    text = (tmp_path / "o" / "report.txt").read_text(encoding="utf-8")
    assert "Hygiene score: n/a / 100" in text
    assert 'B {"c": 1}' in text
