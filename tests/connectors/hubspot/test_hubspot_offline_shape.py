"""check-config --offline predicts what a HubSpot pull provides; the fake portal's pull agrees,
and the pull reports its progress page by page."""

from __future__ import annotations

import pytest

from auditor.app.source_shape import expected_shape
from connectors.base import PullProgress


@pytest.mark.parametrize("mode", ["date_entered", "full"])
def test_prediction_equals_the_pull(fake, make_connector, mode: str) -> None:
    connector = make_connector(stage_history=mode)
    shape = expected_shape(connector)
    snap = connector.pull()
    assert shape is not None
    assert shape.provided_fields == snap.meta.provided_fields
    assert shape.has_stage_history == snap.meta.has_stage_history
    assert shape.reached_stages >= snap.meta.reached_stages


def test_progress_per_page(fake, make_connector) -> None:
    seen: list[PullProgress] = []
    connector = make_connector(page_size=3)
    connector.on_progress = seen.append
    snap = connector.pull()
    assert [p.what for p in seen] == ["deals"] * len(seen)
    assert [p.pages for p in seen] == list(range(1, len(seen) + 1))
    assert seen[-1].records == len(snap.opportunities)
    assert [p.api_calls for p in seen] == sorted(p.api_calls for p in seen)
