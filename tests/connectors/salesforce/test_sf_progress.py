"""The pull reports its progress after every page (for `crm-audit run`'s progress display)."""

from __future__ import annotations

from connectors.base import PullProgress


def test_every_page_reports_records_pages_calls_and_total(org, make_connector) -> None:
    seen: list[PullProgress] = []
    connector = make_connector()
    connector.on_progress = seen.append
    connector.pull()
    by_object = [(p.what, p.records, p.pages, p.total) for p in seen]
    # the fake org's pages (data/rest/*.json): opportunities 3 + 3 + 1 of 7, history 10 + 7
    # of 17 (the one-page stage and user queries come first and are not reported)
    assert by_object == [
        ("Opportunity", 3, 1, 7),
        ("Opportunity", 6, 2, 7),
        ("Opportunity", 7, 3, 7),
        ("OpportunityHistory", 10, 1, 17),
        ("OpportunityHistory", 17, 2, 17),
    ]
    # one query call per page, counted as the pull goes (calls 1 and 2: stages, users)
    assert [p.api_calls for p in seen] == [3, 4, 5, 6, 7]


def test_no_callback_no_cost(org, make_connector) -> None:
    assert make_connector().pull().opportunities.shape[0] == 7
