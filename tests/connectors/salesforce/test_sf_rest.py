"""REST path against the recorded wire format: pagination, relationships, history → Snapshot."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlparse

import pandas.testing as pdt
import pytest

from auditor.snapshot import ApiLimit, ApiUsage
from connectors.registry import build_connector
from connectors.salesforce.connector import SalesforceConnector
from tests.connectors.salesforce import expected
from tests.connectors.salesforce.fake_org import BASE


def test_rest_pull_gives_the_exact_snapshot(org, make_connector) -> None:
    snap = make_connector().pull()
    pdt.assert_frame_equal(snap.opportunities, expected.opportunities())
    pdt.assert_frame_equal(snap.stage_history, expected.stage_history())
    pdt.assert_frame_equal(snap.owners, expected.owners())
    m = snap.meta
    assert (m.source, m.source_type) == ("acme", "salesforce")
    assert m.provided_fields == expected.PROVIDED
    assert m.has_stage_history is True
    assert m.unmapped_stages == {"Discovery Call": 1}
    assert m.warnings == [expected.UNMAPPED_WARNING]
    assert m.rejected == [] and m.loaded_rows == 7 and m.incremental is False
    assert m.reached_stages == frozenset(
        {
            "contact",
            "qualification",
            "discovery",
            "solution",
            "proposal",
            "negotiation",
            "closed_won",
            "closed_lost",
        }
    )
    assert m.api_calls == 8
    # 7 query pages (stages, users, 3 of deals, 2 of history) and the describe; the records
    # of the recorded pages; the daily limit from the last Sforce-Limit-Info (api-usage=1200/15000)
    assert m.api_usage == ApiUsage(
        calls=8,
        calls_by_endpoint={"GET /query": 7, "GET /sobjects/Opportunity/describe": 1},
        transient_failures=0,
        records_read={"OpportunityStage": 12, "User": 3, "Opportunity": 7,
                      "OpportunityHistory": 17},
        limits={"daily": ApiLimit(limit=15000, remaining=13800, window="day")},
        logins=0,
    )
    assert m.api_usage.limits["daily"].used == 1200
    assert m.extra["api_paths"] == {"Opportunity": "rest", "OpportunityHistory": "rest"}
    assert [s["stage"] for s in m.extra["stage_metadata"] if s["common_stage"] is None] == [
        "Discovery Call",
        "Legacy Stage",
    ]
    assert m.extra["stage_metadata"][2] == {
        "stage": "Discovery Call",
        "order": 3,
        "is_closed": False,
        "is_won": False,
        "active": True,
        "common_stage": None,
    }


def test_three_pages_followed_by_nextrecordsurl(org, rsps, make_connector) -> None:
    make_connector().pull()
    paths = [urlparse(c.request.url).path for c in rsps.calls]
    assert paths == [
        f"{urlparse(BASE).path}/query/",  # OpportunityStage
        f"{urlparse(BASE).path}/sobjects/Opportunity/describe",  # field-level security
        f"{urlparse(BASE).path}/query/",  # User
        f"{urlparse(BASE).path}/query/",  # Opportunity page 1
        "/services/data/v59.0/query/01gD0000002HU6KIAW-3",
        "/services/data/v59.0/query/01gD0000002HU6KIAW-6",
        f"{urlparse(BASE).path}/query/",  # OpportunityHistory page 1
        "/services/data/v59.0/query/01gD0000002HistXYZ-10",
    ]
    assert all(c.request.headers["Authorization"].startswith("Bearer ") for c in rsps.calls)


def test_relationship_fields_null_and_present(org, make_connector) -> None:
    opp = make_connector().pull().opportunities.set_index("id")
    assert opp.loc["0068d00000OpA01AAA", "account_name"] == "Acme Corp"
    assert opp.loc["0068d00000OpA03AAA", ["account_id", "account_name"]].isna().all()


def test_soql_selects_configured_fields_and_filters(org, make_connector) -> None:
    make_connector(
        opportunity_filter="RecordType.Name = 'New Business'", pipeline_field="RecordType.Name"
    ).pull(since=datetime(2024, 4, 1))
    opp_q = next(q for q in org.soql if "FROM Opportunity " in q + " " and "History" not in q)
    assert "Loss_Reason__c, Next_Step_Date__c, RecordType.Name, Budget__c" in opp_q
    assert opp_q.endswith(
        "WHERE (RecordType.Name = 'New Business') AND (SystemModstamp > 2024-04-01T00:00:00Z)"
    )
    hist_q = next(q for q in org.soql if "FROM OpportunityHistory" in q)
    assert hist_q.endswith(
        "WHERE (OpportunityId IN (SELECT Id FROM Opportunity WHERE "
        "(RecordType.Name = 'New Business'))) AND (SystemModstamp > 2024-04-01T00:00:00Z)"
    )


def test_incremental_pull_is_marked(org, make_connector) -> None:
    snap = make_connector().pull(since=datetime(2024, 4, 1))
    assert snap.meta.incremental is True
    assert snap.meta.extra["since"] == "2024-04-01T00:00:00+00:00"  # naive = UTC


def test_a_full_pull_reads_live_records_only(org, rsps, make_connector) -> None:
    org.records["Opportunity"].append(dict(org.records["Opportunity"][0],
                                           Id="0068d00000OpA99AAA", IsDeleted=True))
    snap = make_connector().pull()
    assert all("/queryAll/" not in c.request.url for c in rsps.calls)
    assert snap.meta.deleted_ids == []
    assert "0068d00000OpA99AAA" not in set(snap.opportunities["id"])
    assert len(snap.opportunities) == 7


def test_history_off_means_no_history_columns(org, make_connector) -> None:
    snap = make_connector(include_history=False).pull()
    assert snap.meta.has_stage_history is False
    assert snap.stage_history.empty
    assert {"stage_entered_at", "close_date_changes"}.isdisjoint(snap.meta.provided_fields)
    assert snap.opportunities["close_date_changes"].isna().all()
    assert snap.meta.api_calls == 6


def test_provided_fields_follow_the_configuration(org, make_connector) -> None:
    snap = make_connector(
        loss_reason_field=None, next_step_due_field=None, custom_fields={}, currency=None
    ).pull()
    assert {"loss_reason", "next_step_due", "budget", "currency"}.isdisjoint(
        snap.meta.provided_fields
    )
    assert "next_step" in snap.meta.provided_fields


def test_check_reports_unmapped_stages_and_usage(org, rsps, make_connector) -> None:
    facts = make_connector().check()
    assert facts == {
        "instance_url": "https://acme.my.salesforce.com",
        "stages": 12,
        "unmapped_stages": ["Discovery Call"],
        "unreadable_fields": {},
        "warnings": [],
        "api_calls": 2,  # stage metadata + describe
        "api_usage": {
            "calls": 2,
            "calls_by_endpoint": {"GET /query": 1, "GET /sobjects/Opportunity/describe": 1},
            "transient_failures": 0,
            "records_read": {"OpportunityStage": 12},
            "limits": {"daily": {"limit": 15000, "remaining": 13800, "used": 1200,
                                 "window": "day", "scope": None}},
            "logins": 0,
        },
        "api_remaining": 13800,
    }
    assert len(rsps.calls) == 2


def test_stage_map_contradicting_metadata_is_warned(org, make_connector) -> None:
    snap = make_connector(
        stage_map={"Closed Lost": "negotiation", "Discovery Call": "discovery"}
    ).pull()
    assert snap.meta.unmapped_stages == {}
    # reported once, by the Snapshot validator, with the number of records it affects
    assert snap.meta.warnings == [
        "1 record whose CRM closed/won flags contradict the mapped stage "
        "(e.g. 0068d00000OpA03AAA); the CRM's flags are used — check the stage map"
    ]
    row = snap.opportunities.set_index("id").loc["0068d00000OpA03AAA"]
    assert (row["stage"], row["is_closed"], row["is_won"]) == ("negotiation", True, False)
    assert (row["is_open"], row["is_lost"]) == (False, True)


def test_registry_builds_the_connector_from_config() -> None:
    from auditor.config import parse_config

    cfg = parse_config(
        {
            "source": {
                "type": "salesforce",
                "auth": "jwt",
                "username": "a@b.c",
                "consumer_key_env": "K",
                "private_key_env": "P",
            }
        }
    )
    assert isinstance(build_connector(cfg), SalesforceConnector)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"auth": "client_credentials", "consumer_key_env": "K", "consumer_secret_env": "S"},
            "needs domain = '<your My Domain>.my'",
        ),
        ({"auth": "password", "username": "a@b.c"}, "needs password_env, security_token_env"),
        (
            {"auth": "jwt", "consumer_key_env": "K", "username": "u"},
            "needs private_key_env (or private_key_file)",
        ),
        (
            {
                "auth": "session",
                "session_id_env": "S",
                "instance_url": "https://x.my.salesforce.com",
                "domain": "https://login.salesforce.com",
            },
            "give only the part before .salesforce.com",
        ),
        (
            {
                "auth": "session",
                "session_id_env": "S",
                "instance_url": "https://x",
                "pasword_env": "typo",
            },
            "unknown key `source.pasword_env`",
        ),
    ],
)
def test_bad_auth_config_is_a_clear_config_error(source, message) -> None:
    from auditor.config import parse_config
    from auditor.errors import ConfigError

    cfg = parse_config({"source": {"type": "salesforce", **source}}, origin="audit.toml")
    with pytest.raises(ConfigError, match="audit.toml") as err:
        build_connector(cfg)
    assert message in str(err.value)


def test_missing_secret_env_names_the_key(org, make_connector) -> None:
    from auditor.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        make_connector(env={}).pull()
    assert str(err.value) == (
        "config key source.session_id_env names environment variable "
        "SF_SESSION, which is not set or empty"
    )


def test_documented_config_example_is_valid() -> None:
    import tomllib
    from pathlib import Path

    from connectors.salesforce.export import SalesforceExportConnector

    text = (Path(__file__).parents[3] / "docs/config/source-salesforce.toml").read_text()
    live = tomllib.loads(text)["source"]
    assert live.pop("type") == "salesforce"
    SalesforceConnector.Options.model_validate(live)
    offline_part = text.split('# type = "salesforce_export"')[1]
    offline = tomllib.loads(
        "\n".join(
            line.removeprefix("# ").split("  #")[0]
            for line in offline_part.splitlines()
            if line.startswith("# ") and "=" in line
        )
    )
    SalesforceExportConnector.Options.model_validate(offline)


def test_owner_outside_the_user_query_comes_from_the_opportunity(org, make_connector) -> None:
    org.records["User"] = [u for u in org.records["User"] if u["Name"] != "Bob Stone"]
    snap = make_connector().pull()
    bob = snap.owners.set_index("id").loc["0058d0000001BobAAA"]
    assert bob["name"] == "Bob Stone"
    assert bob[["email", "active", "manager_id", "team"]].isna().all()
    assert snap.meta.warnings[-1] == (
        "1 opportunity owner(s) not among the users read (e.g. 0058d0000001BobAAA); their names "
        "come from the opportunities, their active flag and manager are unknown"
    )
