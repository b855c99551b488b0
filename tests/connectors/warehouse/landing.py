"""Land the fake orgs' records in a database the way Fivetran and Airbyte would.

Written from the tools' documented schemas (docs/connectors/warehouse.md lists them), not from
the connector's layout module: table and column names are spelled out here on their own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

TESTS = Path(__file__).resolve().parents[1]
SF_DATA = TESTS / "salesforce" / "data" / "rest"
HS_DATA = TESTS / "hubspot" / "data"

SF_DATETIMES = {"CreatedDate", "LastModifiedDate", "SystemModstamp"}
SF_DATES = {"CloseDate", "LastActivityDate", "Next_Step_Date__c", "PrevCloseDate"}
SYNCED = pd.Timestamp("2024-06-01T00:00:00Z")


def sf_records(obj: str) -> list[dict[str, Any]]:
    pages = json.loads((SF_DATA / f"{obj}.json").read_text())
    return [r for p in pages for r in p["records"]]


def _fivetran_name(api: str) -> str:
    # Fivetran: lower snake case; the custom-field suffix __c becomes _c
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", api.replace("__c", "_c")).lower()


def _flat(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = []
    for r in records:
        row = {k: v for k, v in r.items() if k != "attributes" and not isinstance(v, dict)}
        rows.append(row)
    return pd.DataFrame(rows)


def _typed(df: pd.DataFrame, *, text_times: bool) -> pd.DataFrame:
    out = df.copy()
    for c in out.columns:
        if c in SF_DATETIMES and not text_times:
            out[c] = pd.to_datetime(out[c], utc=True, format="ISO8601")
        elif c in SF_DATES and not text_times:
            out[c] = pd.to_datetime(out[c], format="%Y-%m-%d").dt.date
    return out


def salesforce_tables(layout: str) -> dict[str, pd.DataFrame]:
    """Opportunity (+ one deleted record), OpportunityHistory, User, OpportunityStage, Account."""
    opps = sf_records("Opportunity")
    accounts = {r["AccountId"]: r["Account"]["Name"] for r in opps if r.get("Account")}
    frames = {
        "Opportunity": _flat(opps),
        "OpportunityHistory": _flat(sf_records("OpportunityHistory")),
        "User": _flat(sf_records("User")),
        "OpportunityStage": _flat(sf_records("OpportunityStage")),
        "Account": pd.DataFrame({"Id": list(accounts), "Name": list(accounts.values())}),
    }
    for f in frames.values():
        f["IsDeleted"] = False
    # a record in the recycle bin: the warehouse keeps it, the API's query() does not return it
    ghost = frames["Opportunity"].iloc[[0]].copy()
    ghost["Id"], ghost["IsDeleted"], ghost["Name"] = "0068d00000OpGhostAAA", True, "Deleted deal"
    frames["Opportunity"] = pd.concat([frames["Opportunity"], ghost], ignore_index=True)
    out = {}
    for obj, f in frames.items():
        if layout == "fivetran":
            f = _typed(f, text_times=False)
            f = f.rename(columns=_fivetran_name)
            f["_fivetran_synced"] = SYNCED
            f["_fivetran_deleted"] = False
            out[_fivetran_name(obj)] = f
        else:  # Airbyte: stream = object name, API field names, timestamps as landed text
            f = _typed(f, text_times=True)
            f["_airbyte_raw_id"] = [f"raw-{i}" for i in range(len(f))]
            f["_airbyte_extracted_at"] = SYNCED
            out[obj] = f
    return out


def hubspot_tables(layout: str) -> dict[str, pd.DataFrame]:
    store = json.loads((HS_DATA / "deals.json").read_text())
    defined = set(store["portal_properties"])
    deals = store["deals"]
    archived = store.get("archived_deals", [])
    pipes = json.loads((HS_DATA / "pipelines.json").read_text())["results"]
    owners = json.loads((HS_DATA / "owners.json").read_text())
    owner_rows = [{**o, "archived": False} for o in owners["active"]] + [
        {**o, "archived": True} for o in owners["archived"]]
    history = [
        {"deal": d["id"], "name": name, "value": v["value"],
         "ts": pd.Timestamp(v["timestamp"])}
        for d in deals for name, vs in (d.get("propertiesWithHistory") or {}).items() for v in vs
    ]
    if layout == "fivetran":
        rows = []
        for d in deals + archived:
            p = d["properties"]
            row = {"deal_id": int(d["id"]), "is_deleted": bool(d.get("archived")),
                   "deal_pipeline_id": p.get("pipeline"),
                   "deal_pipeline_stage_id": p.get("dealstage"),
                   "owner_id": int(p["hubspot_owner_id"]) if p.get("hubspot_owner_id") else None,
                   "portal_id": 4242, "_fivetran_synced": SYNCED}
            for k in defined - {"pipeline", "dealstage", "hubspot_owner_id", "hs_object_id"}:
                row[f"property_{k}"] = p.get(k)
            rows.append(row)
        deal = pd.DataFrame(rows)
        for c in ("property_createdate", "property_hs_lastmodifieddate", "property_closedate"):
            deal[c] = pd.to_datetime(deal[c], utc=True, format="ISO8601")
        deal["property_amount"] = pd.to_numeric(deal["property_amount"])
        deal["owner_id"] = deal["owner_id"].astype("Int64")  # Fivetran: Long
        stage_rows = [
            {"deal_id": int(d["id"]), "value": k[len("hs_v2_date_entered_"):],
             "date_entered": pd.Timestamp(v), "_fivetran_active": True, "source": "CRM_UI"}
            for d in deals for k, v in d["properties"].items()
            if k.startswith("hs_v2_date_entered_") and v
        ]
        # an earlier visit to a stage the deal entered again later: the later entry counts
        first = stage_rows[0]
        stage_rows.append({**first, "date_entered": first["date_entered"] - pd.Timedelta(days=9),
                           "_fivetran_active": False})
        pipeline = pd.DataFrame([{"pipeline_id": p["id"], "label": p["label"],
                                  "display_order": p["displayOrder"], "active": True,
                                  "_fivetran_deleted": False} for p in pipes])
        stage = pd.DataFrame([{
            "stage_id": s["id"], "pipeline_id": p["id"], "label": s["label"],
            "display_order": s["displayOrder"],
            "probability": float(s["metadata"]["probability"]),
            "closed_won": s["metadata"]["isClosed"] == "true"
            and float(s["metadata"]["probability"]) == 1.0,
            "active": True, "_fivetran_deleted": False} for p in pipes for s in p["stages"]])
        owner = pd.DataFrame([{"owner_id": int(o["id"]), "email": o.get("email"),
                               "first_name": o.get("firstName"), "last_name": o.get("lastName"),
                               "is_active": not o["archived"], "portal_id": 4242}
                              for o in owner_rows])
        hist = pd.DataFrame([{"deal_id": int(h["deal"]), "name": h["name"], "value": h["value"],
                              "timestamp": h["ts"], "source": "CRM_UI"} for h in history])
        return {"deal": deal, "deal_stage": pd.DataFrame(stage_rows), "deal_pipeline": pipeline,
                "deal_pipeline_stage": stage, "owner": owner, "deal_property_history": hist}
    rows = []
    for d in deals + archived:
        p = d["properties"]
        row = {"id": d["id"], "archived": bool(d.get("archived")),
               "updatedAt": p.get("hs_lastmodifieddate"), "properties": json.dumps(p)}
        for k in sorted(defined | {k for k in p if k.startswith("hs_v2_date_entered_")}):
            row[f"properties_{k}"] = p.get(k)
        rows.append(row)
    return {
        "deals": pd.DataFrame(rows),
        "deal_pipelines": pd.DataFrame([{
            "id": p["id"], "label": p["label"], "displayOrder": p["displayOrder"],
            "archived": False,
            "stages": json.dumps([{"id": s["id"], "label": s["label"],
                                   "displayOrder": s["displayOrder"],
                                   "metadata": s["metadata"]} for s in p["stages"]]),
        } for p in pipes]),
        "owners": pd.DataFrame([{"id": o["id"], "email": o.get("email"),
                                 "firstName": o.get("firstName"), "lastName": o.get("lastName"),
                                 "archived": o["archived"],
                                 "teams": json.dumps(o.get("teams") or [])}
                                for o in owner_rows]),
        "deals_property_history": pd.DataFrame([{
            "dealId": int(h["deal"]), "property": h["name"], "value": h["value"],
            "timestamp": int(h["ts"].timestamp() * 1000)} for h in history]),
    }


def load(url: str, tables: dict[str, pd.DataFrame], schema: str | None = None) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if schema:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        for name, frame in tables.items():
            frame.to_sql(name, conn, schema=schema, index=False, if_exists="replace")
    engine.dispose()
