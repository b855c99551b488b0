"""Warehouse source: Fivetran- and Airbyte-landed tables in DuckDB and PostgreSQL give the same
Snapshot and the same findings as the API connectors on the same records."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import responses
import sqlalchemy as sa
from pandas.testing import assert_frame_equal

from auditor.config import AuditConfig
from auditor.engine import run_audit
from auditor.errors import ConfigError, SourceDataError
from connectors.registry import connector_class
from tests.connectors.hubspot.conftest import CUSTOM, STAGE_MAP, TOKEN
from tests.connectors.hubspot.fake_server import FakeHubSpot
from tests.connectors.salesforce.fake_org import FIELD_OPTIONS, INSTANCE_URL, SESSION_ENV, FakeOrg
from tests.connectors.warehouse.landing import hubspot_tables, load, salesforce_tables

AS_OF = "2024-06-15"
LAYOUTS = ["fivetran", "airbyte"]
DATABASES = ["duckdb", "postgresql"]


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    def make(kind: str, name: str) -> tuple[str, dict[str, str], str | None]:
        if kind == "duckdb":
            return f"duckdb:///{tmp_path / (name + '.duckdb')}", {}, None
        pg = request.getfixturevalue("pg")
        db = pg.create_database(f"{name}_{len(list(tmp_path.iterdir()))}_{id(tmp_path)}")
        (tmp_path / db).touch()
        return pg.url(db), {"WH_PASSWORD": pg.password}, "WH_PASSWORD"
    return make


def _warehouse(url: str, env: dict[str, str], pw: str | None, **opts: Any):  # noqa: ANN202
    cls = connector_class("warehouse")
    return cls(cls.Options.model_validate({"url": url, "password_env": pw, **opts}), env=env)


def _load(url: str, env: dict[str, str], tables: dict[str, pd.DataFrame],
          schema: str | None = None) -> None:
    if env:
        url = url.replace("audit@", f"audit:{env['WH_PASSWORD']}@")
    load(url, tables, schema)


def _findings(snap: Any) -> pd.DataFrame:
    v = run_audit(snap, AuditConfig(), as_of=AS_OF).violations
    return v.sort_values(["rule_code", "opportunity_id"]).reset_index(drop=True)


# -- Salesforce --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sf_api_snapshot() -> Any:
    from connectors.salesforce.connector import SalesforceConnector

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeOrg(rsps)
        opts = {"auth": "session", "session_id_env": "SF_SESSION", "instance_url": INSTANCE_URL,
                "name": "acme", **FIELD_OPTIONS}
        conn = SalesforceConnector(SalesforceConnector.Options.model_validate(opts),
                                   env=SESSION_ENV, sleep=lambda s: None)
        return conn.pull()


SF_OPTS = {"crm": "salesforce", "name": "acme", "instance_url": INSTANCE_URL,
           "fields": FIELD_OPTIONS}


@pytest.mark.parametrize(("layout", "db"), list(itertools.product(LAYOUTS, DATABASES)))
def test_salesforce_tables_give_the_api_snapshot_and_findings(
        layout: str, db: str, db_url: Any, sf_api_snapshot: Any) -> None:
    url, env, pw = db_url(db, f"sf_{layout}")
    schema = "salesforce" if db == "postgresql" else None
    _load(url, env, salesforce_tables(layout), schema)
    snap = _warehouse(url, env, pw, layout=layout, schema=schema, **SF_OPTS).pull()
    api = sf_api_snapshot
    assert_frame_equal(snap.opportunities, api.opportunities)
    assert_frame_equal(snap.stage_history, api.stage_history)
    assert_frame_equal(snap.owners, api.owners)
    assert "0068d00000OpGhostAAA" not in set(snap.opportunities["id"])  # deleted at the source
    found = _findings(snap)
    assert len(found) > 0
    assert_frame_equal(found, _findings(api))
    assert snap.meta.api_calls == 0 and snap.meta.api_usage is None  # no CRM API was called
    assert snap.meta.extra["sql_queries"] == 5


@pytest.fixture
def statements() -> Any:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split()))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    yield seen
    sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_salesforce_since_is_pushed_into_sql_and_only_needed_columns_are_read(
        layout: str, db_url: Any, statements: list[str]) -> None:
    url, env, pw = db_url("duckdb", f"sf_since_{layout}")
    _load(url, env, salesforce_tables(layout))
    statements.clear()
    since = datetime(2024, 4, 1, tzinfo=UTC)
    snap = _warehouse(url, env, pw, layout=layout, **SF_OPTS).pull(since=since)
    stamp = "system_modstamp" if layout == "fivetran" else '"SystemModstamp"'
    opp_query = next(s for s in statements
                     if re.search(r'FROM "?opportunity"? WHERE', s, re.IGNORECASE))
    assert stamp.lower() in opp_query.lower().split("where", 1)[1]
    assert "_fivetran_synced" not in " ".join(statements)
    assert "_airbyte_raw_id" not in " ".join(statements)
    # by hand from Opportunity.json: SystemModstamp after 2024-04-01
    records = salesforce_tables("airbyte")["Opportunity"]
    changed = records[pd.to_datetime(records["SystemModstamp"], utc=True, format="ISO8601")
                      > pd.Timestamp(since)]
    live = set(changed.loc[~changed["IsDeleted"], "Id"])
    assert set(snap.opportunities["id"]) == live
    assert snap.meta.incremental is True
    assert snap.meta.deleted_ids == sorted(
        set(changed.loc[changed["IsDeleted"], "Id"]))


# -- HubSpot -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hs_api() -> Any:
    from connectors.hubspot.connector import HubSpotConnector
    from connectors.hubspot.options import HubSpotOptions

    out = {}
    with FakeHubSpot(token=TOKEN) as fake:
        for mode in ("date_entered", "full"):
            opts = HubSpotOptions(host=fake.host, stage_map=STAGE_MAP, custom_fields=CUSTOM,
                                  search_min_interval_s=0, stage_history=mode)
            out[mode] = HubSpotConnector(opts, env={"HUBSPOT_ACCESS_TOKEN": TOKEN},
                                         sleep=lambda s: None).pull()
    return out


@pytest.mark.parametrize(("layout", "db", "mode"), list(
    itertools.product(LAYOUTS, DATABASES, ["date_entered", "full"])))
def test_hubspot_tables_give_the_api_snapshot_and_findings(
        layout: str, db: str, mode: str, db_url: Any, hs_api: Any) -> None:
    url, env, pw = db_url(db, f"hs_{layout}_{mode}")
    _load(url, env, hubspot_tables(layout))
    fields = {"custom_fields": CUSTOM, "portal_id": 4242, "portal_timezone": "America/New_York",
              "stage_history": mode}
    snap = _warehouse(url, env, pw, crm="hubspot", layout=layout, name="hubspot",
                      stage_map=STAGE_MAP, fields=fields).pull()
    api = hs_api[mode]
    assert_frame_equal(snap.opportunities, api.opportunities)
    assert_frame_equal(snap.stage_history, api.stage_history)
    owners = api.owners.copy()
    if layout == "fivetran":
        owners["team"] = pd.NA  # teams are not in Fivetran's owner table (team_user has users)
        owners["team"] = owners["team"].astype(api.owners["team"].dtype)
    assert_frame_equal(snap.owners, owners)
    assert snap.meta.reached_stages == api.meta.reached_stages
    assert_frame_equal(_findings(snap), _findings(api))


# -- configuration -----------------------------------------------------------------------------
def test_password_in_url_is_refused_and_never_shown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        _warehouse("postgresql+psycopg://audit:hunter2@127.0.0.1:1/x", {}, None,
                   layout="fivetran", **SF_OPTS).pull()
    assert "password_env" in str(exc.value) and "hunter2" not in str(exc.value)


def test_wrong_layout_names_the_missing_column(db_url: Any) -> None:
    url, env, pw = db_url("duckdb", "wrong")
    _load(url, env, salesforce_tables("airbyte"))
    # Airbyte's "Opportunity" matches Fivetran's "opportunity" case-insensitively (and so does
    # Id / id), but Fivetran's stage_name is not there: the message says which and where
    with pytest.raises(SourceDataError, match=r"table Opportunity: column stage_name "
                       r"\(Opportunity.StageName\) is missing; is source.layout right"):
        _warehouse(url, env, pw, layout="fivetran", **SF_OPTS).pull()


def test_field_options_are_checked_for_the_crm() -> None:
    cls = connector_class("warehouse")
    with pytest.raises(ValueError, match="Salesforce API field name"):
        cls.Options.model_validate({"url": "duckdb:///x", "crm": "salesforce",
                                    "layout": "fivetran",
                                    "fields": {"loss_reason_field": "a b"}})


@pytest.mark.parametrize("layout", LAYOUTS)
def test_hubspot_since_pull_reads_changed_deals_and_reports_archived_ones(
        layout: str, db_url: Any, statements: list[str]) -> None:
    url, env, pw = db_url("duckdb", f"hs_since_{layout}")
    tables = hubspot_tables(layout)
    _load(url, env, tables)
    statements.clear()
    since = datetime(2024, 1, 1, tzinfo=UTC)
    snap = _warehouse(url, env, pw, crm="hubspot", layout=layout, name="hubspot",
                      stage_map=STAGE_MAP,
                      fields={"custom_fields": CUSTOM, "portal_id": 4242}).pull(since=since)
    deal_query = next(s for s in statements if re.search(r'FROM "?deals?"? WHERE', s, re.I))
    stamp = "property_hs_lastmodifieddate" if layout == "fivetran" else \
        "properties_hs_lastmodifieddate"
    assert stamp in deal_query.split("WHERE", 1)[1]
    # by hand from deals.json: every live deal was modified in 2024; of the archived ones,
    # 190 (modified 2024-01-02) is after `since`, 191 (2023) is not
    assert sorted(snap.opportunities["id"]) == ["101", "102", "103", "104", "105", "106", "107"]
    assert snap.meta.incremental is True
    assert snap.meta.deleted_ids == ["190"]
    # 2024-03-01 12:00: 103 (03-05), 105 (03-02), 106 (03-03), 107 (03-04); not 104 (03-01 10:00)
    later = _warehouse(url, env, pw, crm="hubspot", layout=layout, name="hubspot",
                       stage_map=STAGE_MAP, fields={"custom_fields": CUSTOM, "portal_id": 4242}
                       ).pull(since=datetime(2024, 3, 1, 12, tzinfo=UTC))
    assert sorted(later.opportunities["id"]) == ["103", "105", "106", "107"]
    assert later.meta.deleted_ids == []


def test_check_lists_the_layouts_tables(db_url: Any) -> None:
    url, env, pw = db_url("duckdb", "check")
    tables = salesforce_tables("fivetran")
    del tables["opportunity_stage"]
    _load(url, env, tables)
    facts = _warehouse(url, env, pw, layout="fivetran", **SF_OPTS).check()
    assert facts["tables_found"] == ["account", "opportunity", "opportunity_history", "user"]
    assert facts["tables_missing"] == ["opportunity_stage"]
    with pytest.raises(SourceDataError, match=r"table deals not found \(tables there: account, "
                       r"opportunity, opportunity_history, user\); check source.layout"):
        _warehouse(url, env, pw, layout="airbyte", crm="hubspot", name="x").check()
