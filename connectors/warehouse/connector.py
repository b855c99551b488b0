"""``[source] type = "warehouse"``: Salesforce / HubSpot tables landed by Fivetran or Airbyte.

The rows are read with only the columns the mapping needs (``since`` pushed into SQL), renamed
back to the CRM's API names, and handed to the SAME mapping code the API connectors use
(``connectors.salesforce.normalise.build_snapshot``, ``connectors.hubspot.normalise.normalise``),
so the same records give the same Snapshot and the same findings. No API calls are made
(``meta.api_usage`` is None); the number of SQL queries is in ``meta.extra["sql_queries"]``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any, ClassVar, Literal

import pandas as pd
import sqlalchemy as sa
from pydantic import Field, model_validator

from auditor.config import Section
from auditor.errors import ConfigError
from auditor.snapshot import STR, Snapshot
from auditor.stages import StageMap
from connectors.base import Connector, SourceOptions
from connectors.hubspot.connector import owners_frame, reached_by_pipeline
from connectors.hubspot.fields import DATE_ENTERED_PREFIX, HISTORY_PROPERTIES, FieldOptions
from connectors.hubspot.normalise import PullContext, RawDeals, normalise
from connectors.hubspot.pipelines import catalogue_from_pipelines, map_catalogue
from connectors.salesforce.fields import (
    HISTORY_FIELDS,
    STAGE_FIELDS,
    SalesforceFieldOptions,
    opportunity_specs,
    user_specs,
)
from connectors.salesforce.normalise import PullFacts, RawOrg, build_snapshot
from connectors.warehouse.layouts import (
    HISTORY_COLUMNS,
    HUBSPOT_TABLES,
    OWNER_COLUMNS,
    Crm,
    HubSpotLayout,
    Layout,
    SalesforceLayout,
)
from connectors.warehouse.reader import Warehouse, build_url

log = logging.getLogger(__name__)


class SalesforceWarehouseFields(SalesforceFieldOptions):
    """``[source.fields]`` for ``crm = "salesforce"``: the Salesforce connector's field keys."""


class HubSpotWarehouseFields(FieldOptions):
    """``[source.fields]`` for ``crm = "hubspot"``: the HubSpot connector's field keys."""

    #: "date_entered": stage timing from Fivetran's deal_stage table / Airbyte's
    #: properties_hs_v2_date_entered_* columns; "full": the dealstage / closedate property history
    stage_history: Literal["date_entered", "full"] = "date_entered"


class WarehouseOptions(SourceOptions):
    #: which CRM the tables came from
    crm: Crm
    #: which tool landed them (decides table and column names, see docs/connectors/warehouse.md)
    layout: Layout
    #: SQLAlchemy URL without a password, e.g. "postgresql+psycopg://audit@db/warehouse",
    #: "duckdb:///crm.duckdb", "snowflake://audit@account/db" (dialect packages for Snowflake,
    #: BigQuery, ... are installed separately)
    url: str
    #: environment variable holding the database password (omit for none / other auth)
    password_env: str | None = None
    #: schema (dataset) holding the tables, e.g. "salesforce"; default: the connection's default
    db_schema: str | None = Field(default=None, alias="schema")
    #: table name overrides: Salesforce object / HubSpot logical table → table name
    tables: dict[str, str] = Field(default_factory=dict)
    #: Salesforce: instance URL for record links (https://acme.my.salesforce.com)
    instance_url: str | None = None
    #: Salesforce: read OpportunityHistory (stage timing and close-date pushes)
    include_history: bool = True
    #: CRM field keys (loss_reason_field, custom_fields, portal_timezone, ...): see the
    #: Salesforce and HubSpot connector docs
    fields: dict[str, Any] = Field(default_factory=dict)

    model_config = {"populate_by_name": True}

    @model_validator(mode="after")
    def _check_fields(self) -> WarehouseOptions:
        self.field_options()  # validates source.fields for the CRM now, not mid-pull
        return self

    def field_options(self) -> Section:
        base = {"name": self.name, "stage_map": self.stage_map}
        if self.crm == "salesforce":
            return SalesforceWarehouseFields.model_validate({**self.fields, **base})
        return HubSpotWarehouseFields.model_validate(self.fields)


class WarehouseConnector(Connector):
    type_name: ClassVar[str] = "warehouse"
    Options: ClassVar[type[SourceOptions]] = WarehouseOptions
    options: WarehouseOptions

    def _open(self) -> Warehouse:
        o = self.options
        return Warehouse(build_url(o.url, o.password_env, self.env), o.db_schema)

    def expected_tables(self) -> dict[str, str]:
        """Logical table → the table name this layout (and source.tables) expects."""
        o = self.options
        if o.crm == "salesforce":
            lay = SalesforceLayout(o.layout)
            names = ("Opportunity", "OpportunityHistory", "User", "OpportunityStage", "Account")
            return {n: o.tables.get(n, lay.table(n)) for n in names}
        hs = HubSpotLayout(o.layout)
        return {k: o.tables.get(k, v) for k, v in HUBSPOT_TABLES[hs.name].items()}

    def check(self) -> dict[str, Any]:
        """Connect and list which of the layout's tables exist (the main one must)."""
        wh = self._open()
        try:
            want = self.expected_tables()
            missing = sorted(v for v in want.values() if not wh.has_table(v))
            main = want["Opportunity" if self.options.crm == "salesforce" else "deal"]
            if main in missing:
                wh.table(main)  # raises the "table not found" message
            return {"warehouse": wh.shown, "tables_found": sorted(set(want.values())
                                                                  - set(missing)),
                    "tables_missing": missing}
        finally:
            wh.close()

    def pull(self, since: datetime | None = None) -> Snapshot:
        wh = self._open()
        try:
            if self.options.crm == "salesforce":
                snap = self._salesforce(wh, since)
            else:
                snap = self._hubspot(wh, since)
        finally:
            wh.close()
        log.info("warehouse pull: %d opportunities in %d SQL queries",
                 len(snap.opportunities), wh.queries)
        return snap

    # -- shared ------------------------------------------------------------------------------
    def _table(self, wh: Warehouse, key: str, default: str) -> sa.TableClause:
        return wh.table(self.options.tables.get(key, default))

    @staticmethod
    def _not_deleted(wh: Warehouse, t: sa.TableClause, cols: tuple[str, ...]) -> list[Any]:
        conds = []
        for name in cols:
            c = wh.column(t, name)
            if c is not None:
                conds.append(sa.func.coalesce(c, sa.false()) == sa.false())
        return conds

    @staticmethod
    def _deleted_mask(frame: pd.DataFrame, cols: list[str]) -> pd.Series:
        gone = pd.Series(False, index=frame.index)
        for c in cols:
            if c in frame:
                gone |= frame[c].str.lower().eq("true").fillna(False).astype(bool)
        return gone

    # -- Salesforce --------------------------------------------------------------------------
    def _salesforce(self, wh: Warehouse, since: datetime | None) -> Snapshot:
        o = self.options
        f: SalesforceWarehouseFields = o.field_options()  # type: ignore[assignment]
        lay = SalesforceLayout(o.layout)

        def cols(fields: list[str] | tuple[str, ...]) -> dict[str, str]:
            return {api: lay.column(api) for api in dict.fromkeys(fields)}

        opp_t = self._table(wh, "Opportunity", lay.table("Opportunity"))
        wanted = [s.sf_field for s in opportunity_specs(f)]
        relations = [w for w in wanted if "." in w and w != "Account.Name"]
        if relations:
            raise ConfigError(
                f"source.fields: relationship field(s) {', '.join(relations)} are not columns of "
                "the warehouse's opportunity table; use the id field or a formula field instead")
        wanted = [w for w in wanted if "." not in w]
        deleted_cols = list(lay.deleted_columns())
        select = cols([*wanted, "SystemModstamp", "LastModifiedDate"])
        select.update({c: c for c in deleted_cols})
        conds: list[Any] = []
        if since is not None:
            stamp = wh.column(opp_t, lay.column("SystemModstamp"))
            if stamp is None:
                stamp = wh.column(opp_t, lay.column("LastModifiedDate"), required=True,
                                  what="needed for incremental pulls")
            conds.append(wh.after(stamp, since))
        else:
            conds += self._not_deleted(wh, opp_t, lay.deleted_columns())
        wh.column(opp_t, lay.column("Id"), required=True, what="Opportunity.Id")
        wh.column(opp_t, lay.column("StageName"), required=True, what="Opportunity.StageName")
        opps = wh.read(opp_t, select, sa.and_(sa.true(), *conds))
        gone = self._deleted_mask(opps, deleted_cols)
        deleted = opps.loc[gone, "Id"].dropna().astype(str).tolist() if since else []
        opps = opps[~gone].drop(columns=[c for c in deleted_cols if c in opps])
        opps = opps.reset_index(drop=True)
        ids_sub = sa.select(wh.column(opp_t, lay.column("Id"))).where(sa.and_(sa.true(), *conds))

        users = None
        user_key = "User"
        user_t = self._table(wh, user_key, lay.table(user_key))
        users = wh.read(user_t, cols([s.sf_field for s in user_specs(f) if "." not in s.sf_field]))

        stages = None
        stage_name = o.tables.get("OpportunityStage", lay.table("OpportunityStage"))
        if wh.has_table(stage_name):
            stages = wh.read(wh.table(stage_name), cols(STAGE_FIELDS))

        accounts = None
        acc_name = o.tables.get("Account", lay.table("Account"))
        acc_col = wh.column(opp_t, lay.column("AccountId"))
        if wh.has_table(acc_name) and acc_col is not None:
            acc_t = wh.table(acc_name)
            acc_id = wh.column(acc_t, lay.column("Id"), required=True, what="Account.Id")
            used = sa.select(acc_col).where(sa.and_(sa.true(), *conds))
            accounts = wh.read(acc_t, cols(["Id", "Name"]), acc_id.in_(used))

        history = None
        if o.include_history:
            h_t = self._table(wh, "OpportunityHistory", lay.table("OpportunityHistory"))
            h_conds = [wh.column(h_t, lay.column("OpportunityId"), required=True,
                                 what="OpportunityHistory.OpportunityId").in_(ids_sub)]
            h_conds += self._not_deleted(wh, h_t, lay.deleted_columns())
            history = wh.read(h_t, cols(HISTORY_FIELDS), sa.and_(*h_conds))

        facts = PullFacts(
            source=self.source_name, source_type=self.type_name, instance_url=o.instance_url,
            api_calls=0, incremental=since is not None,
            extra={"layout": o.layout, "crm": o.crm,
                   "since": since.isoformat() if since else None,
                   "sql_queries": wh.queries, "warehouse": wh.shown},
        )
        where = {"opportunities": f"warehouse table {wh.where(opp_t.name)}",
                 "users": f"warehouse table {wh.where(user_t.name)}"}
        raw = RawOrg(opportunities=opps, users=users, history=history, stages=stages,
                     accounts=accounts, deleted_ids=deleted, where=where)
        return build_snapshot(raw, f, facts)

    # -- HubSpot -----------------------------------------------------------------------------
    def _hubspot(self, wh: Warehouse, since: datetime | None) -> Snapshot:
        o = self.options
        f: HubSpotWarehouseFields = o.field_options()  # type: ignore[assignment]
        lay = HubSpotLayout(o.layout)
        stage_map = StageMap.build("hubspot", o.stage_map, name="source.stage_map")
        cat = map_catalogue(catalogue_from_pipelines(self._pipelines(wh, lay),
                                                     "warehouse pipelines"), stage_map)
        owners = self._owners(wh, lay)

        deal_t = self._table(wh, "deal", lay.table("deal"))
        props = list(dict.fromkeys(["hs_object_id", *f.properties()]))
        full = f.stage_history == "full"
        if lay.name == "airbyte" and not full:
            props += [DATE_ENTERED_PREFIX + s for s in cat["stage_id"]]
        wanted = {p: lay.property_column(p) for p in props}
        wanted.update({c: c for c in lay.deleted_columns})
        id_col = wh.column(deal_t, lay.deal_id, required=True, what="the deal id")
        conds: list[Any] = []
        if since is not None:
            stamp = wh.column(deal_t, lay.property_column("hs_lastmodifieddate"), required=True,
                              what="needed for incremental pulls")
            conds.append(wh.after(stamp, since))
        else:
            conds += self._not_deleted(wh, deal_t, lay.deleted_columns)
        deals = wh.read(deal_t, wanted, sa.and_(sa.true(), *conds))
        gone = self._deleted_mask(deals, list(lay.deleted_columns))
        archived = deals.loc[gone, "hs_object_id"].astype(str).tolist() if since else []
        deals = deals[~gone].drop(columns=[c for c in lay.deleted_columns if c in deals])
        deals = deals.rename(columns={"hs_object_id": "id"}).reset_index(drop=True)
        # as text: loaders type ids differently per table (Airbyte: deals.id text, dealId number)
        ids_sub = sa.select(sa.cast(id_col, sa.String)).where(sa.and_(sa.true(), *conds))

        history = None
        if full:
            history = self._property_history(wh, lay, ids_sub)
        elif lay.name == "fivetran":
            deals = self._date_entered(wh, lay, deals, ids_sub)
        present = frozenset(c for c in deals.columns if c != "id") | {"hs_object_id"}
        raw = RawDeals(props=deals.astype({c: STR for c in deals.columns}), present=present,
                       history=history)
        ctx = PullContext(source=self.source_name, source_type=self.type_name,
                          portal_id=f.portal_id, portal_tz=f.portal_timezone or "UTC",
                          incremental=since is not None,
                          extra={"layout": o.layout, "crm": o.crm,
                                 "sql_queries": wh.queries, "warehouse": wh.shown})
        if since is not None:
            ctx.deleted_ids = sorted(archived, key=lambda x: (len(x), x))
        ctx.extra["reached_stages_by_pipeline"] = reached_by_pipeline(cat)
        return normalise(raw, cat, owners, f, stage_map, ctx, full_history=full)

    def _pipelines(self, wh: Warehouse, lay: HubSpotLayout) -> dict[str, Any]:
        """The pipelines as ``GET /crm/v3/pipelines/deals`` would return them."""
        if lay.name == "airbyte":
            t = self._table(wh, "pipeline", lay.table("pipeline"))
            pid = "id" if wh.column(t, "id") is not None else "pipelineId"
            rows = wh.read(t, {"id": pid, "label": "label", "stages": "stages",
                               "archived": "archived"})
            rows = rows[~self._deleted_mask(rows, ["archived"])]
            results = []
            for r in rows.itertuples(index=False):  # a handful of pipelines
                stages = json.loads(r.stages) if pd.notna(r.stages) else []
                for s in stages:
                    s.setdefault("id", s.get("stageId"))
                results.append({"id": r.id, "label": r.label, "stages": stages})
            return {"results": results}
        p_t = self._table(wh, "pipeline", lay.table("pipeline"))
        s_t = self._table(wh, "pipeline_stage", lay.table("pipeline_stage"))
        pipes = wh.read(p_t, {"id": "pipeline_id", "label": "label",
                              "_fivetran_deleted": "_fivetran_deleted"})
        pipes = pipes[~self._deleted_mask(pipes, ["_fivetran_deleted"])]
        stages = wh.read(s_t, {"id": "stage_id", "pipeline_id": "pipeline_id", "label": "label",
                               "displayOrder": "display_order", "probability": "probability",
                               "closed_won": "closed_won", "is_closed": "is_closed",
                               "_fivetran_deleted": "_fivetran_deleted"})
        stages = stages[~self._deleted_mask(stages, ["_fivetran_deleted"])]
        # Fivetran documents closed_won but no closed flag: a won stage is closed; others are
        # unknown here and fall back to each deal's hs_is_closed, then to the stage map
        won = stages.get("closed_won", pd.Series(pd.NA, index=stages.index, dtype=STR))
        closed = stages.get("is_closed", pd.Series(pd.NA, index=stages.index, dtype=STR))
        closed = closed.fillna(won.where(won.str.lower().eq("true").fillna(False).astype(bool)))
        stages = stages.assign(isClosed=closed)
        results = []
        for p in pipes.itertuples(index=False):
            mine = stages[stages["pipeline_id"].eq(p.id).fillna(False).astype(bool)]
            results.append({"id": p.id, "label": p.label, "stages": [
                {"id": s.id, "label": s.label,
                 "displayOrder": None if pd.isna(s.displayOrder) else s.displayOrder,
                 "metadata": {"isClosed": None if pd.isna(s.isClosed) else s.isClosed,
                              "probability": None if pd.isna(s.probability) else s.probability}}
                for s in mine.itertuples(index=False)]})
        return {"results": results}

    def _owners(self, wh: Warehouse, lay: HubSpotLayout) -> pd.DataFrame:
        t = self._table(wh, "owner", lay.table("owner"))
        frame = wh.read(t, OWNER_COLUMNS[lay.name])
        rows = []
        for r in frame.to_dict("records"):  # owners: hundreds at most
            rec = {k: (None if pd.isna(v) else v) for k, v in r.items()}
            if "active" in rec:
                rec["archived"] = rec.pop("active") == "false"
            else:
                rec["archived"] = rec.get("archived") == "true"
            rec["teams"] = json.loads(rec["teams"]) if rec.get("teams") else None
            rows.append(rec)
        return owners_frame(rows)

    def _date_entered(self, wh: Warehouse, lay: HubSpotLayout, deals: pd.DataFrame,
                      ids_sub: sa.Select[Any]) -> pd.DataFrame:
        """Fivetran's deal_stage rows → one hs_v2_date_entered_<stage> column per stage (the
        last time each deal entered it, as the property holds)."""
        t = self._table(wh, "deal_stage", lay.table("deal_stage"))
        deal_id = wh.column(t, "deal_id", required=True, what="deal_stage.deal_id")
        rows = wh.read(t, {"deal": "deal_id", "stage": "value", "at": "date_entered"},
                       sa.cast(deal_id, sa.String).in_(ids_sub))
        rows = rows.dropna(subset=["deal", "stage", "at"])
        if rows.empty:
            return deals
        rows["at"] = pd.to_datetime(rows["at"], utc=True, format="ISO8601")
        last = rows.groupby(["deal", "stage"])["at"].max().unstack("stage")
        last.columns = [DATE_ENTERED_PREFIX + str(c) for c in last.columns]
        text = last.apply(lambda col: col.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        return deals.merge(text, left_on="id", right_index=True, how="left")

    def _property_history(self, wh: Warehouse, lay: HubSpotLayout,
                          ids_sub: sa.Select[Any]) -> pd.DataFrame:
        t = self._table(wh, "property_history", lay.table("property_history"))
        deal, name, value, ts = HISTORY_COLUMNS[lay.name]
        name_col = wh.column(t, name, required=True, what="the property name")
        deal_col = wh.column(t, deal, required=True, what="the deal id")
        rows = wh.read(t, {"deal_id": deal, "property": name, "value": value, "timestamp": ts},
                       sa.and_(name_col.in_(list(HISTORY_PROPERTIES)),
                               sa.cast(deal_col, sa.String).in_(ids_sub)))
        return rows
