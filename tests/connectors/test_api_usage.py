"""run.json publishes ``api_usage`` in one shape for both CRM APIs, and null for other sources.

Each audit runs end to end (``execute``) against a fake that pages like the real API: the
Salesforce org's recorded pages (12 stages, 3 users, 7 deals in pages of 3, 17 history rows in
pages of 10) and the HubSpot portal (2 pipelines, 2 active + 1 archived owner, 7 deals).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import responses

from auditor.app.run import execute
from auditor.config import parse_config
from reports.machine import load_schema
from tests.connectors.hubspot.conftest import CUSTOM, STAGE_MAP, TOKEN
from tests.connectors.hubspot.fake_server import FakeHubSpot
from tests.connectors.salesforce.fake_org import INSTANCE_URL, SESSION_ENV, FakeOrg


def _run_json(source: dict, tmp_path: Path) -> dict:
    cfg = parse_config(
        {"audit": {"as_of": "2024-06-15"}, "source": source, "history": {"enabled": False},
         "report": {"formats": ["json"]}},
        origin=str(tmp_path / "audit.toml"), base_dir=tmp_path)
    execute(cfg, out_dir=tmp_path / "out", deliver=False)
    data = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(load_schema("run")).validate(data)
    return data["facts"]


def test_salesforce_run_json_api_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SF_SESSION", SESSION_ENV["SF_SESSION"])
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeOrg(rsps)
        facts = _run_json({"type": "salesforce", "auth": "session",
                           "session_id_env": "SF_SESSION", "instance_url": INSTANCE_URL,
                           "name": "acme", "bulk": "never"}, tmp_path)
    assert facts["api_calls"] == 8
    assert facts["api_usage"] == {
        "calls": 8,  # query pages: stages 1, users 1, deals 3, history 2; and the describe
        "calls_by_endpoint": {"GET /query": 7, "GET /sobjects/Opportunity/describe": 1},
        "transient_failures": 0,
        "records_read": {"OpportunityStage": 12, "User": 3, "Opportunity": 7,
                         "OpportunityHistory": 17},
        # the fake org's Sforce-Limit-Info: api-usage=1200/15000
        "limits": {"daily": {"limit": 15000, "remaining": 13800, "used": 1200, "window": "day",
                             "scope": None}},
        "logins": 0,  # a session id: no sign-in request
    }


def test_hubspot_run_json_api_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    with FakeHubSpot(token=TOKEN) as fake:
        fake.response_headers = {"X-HubSpot-RateLimit-Daily": "250000",
                                 "X-HubSpot-RateLimit-Daily-Remaining": "249000",
                                 "X-HubSpot-RateLimit-Max": "190",
                                 "X-HubSpot-RateLimit-Remaining": "150",
                                 "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}
        facts = _run_json({"type": "hubspot", "host": fake.host, "stage_map": STAGE_MAP,
                           "custom_fields": CUSTOM, "search_min_interval_s": 0,
                           "portal_id": 1, "portal_timezone": "UTC"}, tmp_path)
    assert facts["api_calls"] == 4
    assert facts["api_usage"] == {
        "calls": 4,  # pipelines, active and archived owners, one page of deals (limit 100)
        "calls_by_endpoint": {"GET /crm/v3/objects/deals": 1, "GET /crm/v3/owners": 2,
                              "GET /crm/v3/pipelines/deals": 1},
        "transient_failures": 0,
        "records_read": {"pipelines": 2, "owners": 3, "deals": 7},
        "limits": {
            "daily": {"limit": 250000, "remaining": 249000, "used": 1000, "window": "day",
                      "scope": None},
            "rolling": {"limit": 190, "remaining": 150, "used": 40, "window": "10 s",
                        "scope": None},
        },
        "logins": 0,
    }


def test_sources_without_an_api_publish_null(tmp_path: Path) -> None:
    facts = _run_json({"type": "demo", "size": 200}, tmp_path)
    assert facts["api_calls"] == 0 and facts["api_usage"] is None


def test_schema_refuses_an_untyped_api_usage() -> None:
    schema = load_schema("run")["properties"]["facts"]["properties"]["api_usage"]
    with pytest.raises(jsonschema.ValidationError):  # the old Salesforce shape
        jsonschema.validate({"api_usage": {"used": 1, "total": 2, "remaining": 1},
                             "calls": {"rest": 8}, "transient_failures": 0}, schema)
