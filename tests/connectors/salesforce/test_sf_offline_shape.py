"""check-config --offline predicts what a Salesforce pull provides; the fake org's pull agrees."""

from __future__ import annotations

from auditor.app.source_shape import expected_shape


def test_prediction_equals_the_pull(org, make_connector) -> None:
    connector = make_connector()
    shape = expected_shape(connector)
    snap = connector.pull()
    assert shape is not None
    assert shape.provided_fields == snap.meta.provided_fields
    assert shape.has_stage_history is snap.meta.has_stage_history is True
    assert shape.reached_stages == snap.meta.reached_stages
    assert shape.extra_columns == {"budget"}


def test_without_history_the_history_columns_are_not_predicted(org, make_connector) -> None:
    connector = make_connector(include_history=False)
    shape = expected_shape(connector)
    snap = connector.pull()
    assert shape.provided_fields == snap.meta.provided_fields
    assert not shape.has_stage_history and not snap.meta.has_stage_history
