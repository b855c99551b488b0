"""API cost: a full REST pull costs one call per 2,000 records per object, nothing per record.

Documented formula (docs/connectors/salesforce.md):
    calls = 1 (OpportunityStage) + 1 (describe) + ceil(users / 2000) + ceil(opportunities / 2000)
            + ceil(history rows / 2000)
"""

from __future__ import annotations

import math

from tests.connectors.salesforce.fake_org import FakeOrg, rest_pages

PAGE = 2000


def _pages(obj: str, records: list[dict], cursor: str) -> list[dict]:
    out = []
    for start in range(0, len(records), PAGE):
        done = start + PAGE >= len(records)
        body = {"totalSize": len(records), "done": done}
        if not done:
            body["nextRecordsUrl"] = f"/services/data/v59.0/query/{cursor}-{start + PAGE}"
        body["records"] = [
            {"attributes": {"type": obj}, **r} for r in records[start : start + PAGE]
        ]
        out.append(body)
    return out


def _org(n_opps: int, n_hist: int) -> dict[str, list[dict]]:
    recorded = rest_pages()
    stages = [
        "Prospecting",
        "Qualification",
        "Needs Analysis",
        "Proposal/Price Quote",
        "Negotiation/Review",
        "Closed Won",
    ]
    opps = [
        {
            "Id": f"0068d0000{i:06d}AAA",
            "Name": f"Deal {i}",
            "AccountId": None,
            "Account": None,
            "OwnerId": "0058d0000001AnnAAA",
            "StageName": stages[i % 6],
            "IsClosed": i % 6 == 5,
            "IsWon": i % 6 == 5,
            "Amount": float(i),
            "Probability": 10.0,
            "ForecastCategoryName": "Pipeline",
            "CloseDate": "2024-06-30",
            "CreatedDate": "2024-01-01T00:00:00.000+0000",
            "LastModifiedDate": "2024-02-01T00:00:00.000+0000",
            "LastActivityDate": None,
            "NextStep": None,
            "LeadSource": "Web",
            "SystemModstamp": None,
        }
        for i in range(n_opps)
    ]
    hist = [
        {
            "Id": f"0088d0000{j:06d}AAA",
            "OpportunityId": f"0068d0000{j % n_opps:06d}AAA",
            "StageName": stages[(j // n_opps) % 6],
            "CloseDate": "2024-06-30",
            "PrevCloseDate": None,
            "CreatedDate": f"2024-0{1 + j // n_opps}-01T00:00:00.000+0000",
        }
        for j in range(n_hist)
    ]
    return {
        "OpportunityStage": recorded["OpportunityStage"],
        "User": recorded["User"],
        "Opportunity": _pages("Opportunity", opps, "01gOpp"),
        "OpportunityHistory": _pages("OpportunityHistory", hist, "01gHist"),
    }


def test_5000_opportunities_and_12000_history_rows_cost_12_calls(rsps, make_connector) -> None:
    FakeOrg(rsps, pages=_org(5000, 12000))
    snap = make_connector(
        loss_reason_field=None, next_step_due_field=None, custom_fields={}, bulk="never"
    ).pull()
    # stages + describe + users + opportunities + history
    formula = 1 + 1 + math.ceil(3 / PAGE) + math.ceil(5000 / PAGE) + math.ceil(12000 / PAGE)
    assert formula == 12
    assert snap.meta.api_calls == formula == len(rsps.calls)
    assert len(snap.opportunities) == 5000
    # 12,000 rows: every deal entered Prospecting in January and Qualification in February,
    # the first 2,000 entered Needs Analysis in March
    assert snap.stage_history["stage"].value_counts().to_dict() == {
        "contact": 5000,
        "qualification": 5000,
        "discovery": 2000,
        "lead": 0,
        "solution": 0,
        "proposal": 0,
        "negotiation": 0,
        "closed_won": 0,
        "closed_lost": 0,
        "handoff": 0,
    }
