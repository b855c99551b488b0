"""Metrics are shown by shape, whatever the metrics module puts in them, and never crash."""

from __future__ import annotations

from pathlib import Path

from auditor.metric_types import Metric
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
    assert rows["rows"][1]["cells"] == ["Other", "—", "1, 2"]
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
    # a metric of a shape no report knows, and no org score: still renders
    run.metrics.stage_conversion = Metric("weird", "d", values={"deep": {"a": {"b": {"c": 1}}}})
    run.metrics.hygiene_score.org = None
    write_reports(run, tmp_path / "o")
    text = (tmp_path / "o" / "report.txt").read_text(encoding="utf-8")
    assert "Hygiene score: n/a / 100" in text
    assert "    a                        B · c 1" in text


def test_metrics_shaped_like_the_metrics_module() -> None:
    """by_period tables: flattened when narrow, split per period when wide, turned when few rows."""
    views = metric_views(
        {
            "schema_version": "1.0",
            "timezone": "UTC",
            "periods": [{"key": "q", "label": "2026-Q3", "start": "2026-07-01", "end": "x"}],
            "metric_names": ["win_rate", "stage_conversion", "pipeline_coverage"],
            "counts": {"open": 3},
            "pipeline_coverage": {
                "name": "pipeline_coverage",
                "definition": "d",
                "available": False,
                "reason": "no targets configured",
            },
            "stage_conversion": {
                "name": "stage_conversion",
                "definition": "d",
                "available": True,
                "reason": None,
                "stages": ["lead", "proposal"],
                "by_period": {
                    "2026-Q3": {
                        s: {"entered": 10, "advanced": 5, "still_open": 1, "rate": 0.5}
                        for s in ("lead", "contact", "qualification")
                    }
                },
            },
            "win_rate": {
                "name": "win_rate",
                "definition": "d",
                "from_qualification_available": False,
                "from_qualification_reason": "no stage history",
                "by_period": {
                    "2026-Q3": {
                        "won": 9,
                        "lost": 1,
                        "rate": 0.9,
                        "from_q": {"won": 8, "rate": 0.8},
                    },
                    "2026-Q4": {
                        "won": 1,
                        "lost": 1,
                        "rate": 0.5,
                        "from_q": {"won": 1, "rate": 1.0},
                    },
                },
            },
        },
        labels={"lead": "Lead"},
    )
    assert [v["key"] for v in views] == [
        "counts",
        "win_rate",
        "stage_conversion",
        "pipeline_coverage",
    ]
    win, conv, cov = views[1:]
    assert win["facts"] == [
        {"label": "From qualification", "value": "not available (no stage history)"}
    ]
    (table,) = win["tables"]
    assert table["columns"] == ["Won", "Lost", "Rate", "From q · won", "From q · rate"]
    assert [r["cells"] for r in table["rows"]] == [
        ["9", "1", "90.0 %", "8", "80.0 %"],
        ["1", "1", "50.0 %", "1", "100.0 %"],
    ]
    (stages,) = conv["tables"]  # 12 columns flattened: split per period instead
    assert stages["title"] == "By period: 2026-Q3"
    assert [r["key"] for r in stages["rows"]] == ["Lead", "contact", "qualification"]
    assert stages["rows"][0]["cells"] == ["10", "5", "1", "50.0 %"]
    assert conv["facts"] == []  # available / reason / stages are steering keys, not figures
    assert cov["facts"] == [{"label": "Not available", "value": "no targets configured"}]


def test_wide_tables_with_few_rows_are_turned() -> None:
    figures = {f"figure_{i}": i for i in range(7)}
    view = metric_view("x", {"name": "x", "by_period": {"Q3": figures, "Q4": figures}})
    (table,) = view["tables"]
    assert table["columns"] == ["Q3", "Q4"]
    assert [r["key"] for r in table["rows"]][:2] == ["Figure 0", "Figure 1"]
    assert table["rows"][6]["cells"] == ["6", "6"]
