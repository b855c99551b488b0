"""Regenerate the Salesforce test payloads from one small org (run by hand, output committed).

    python tests/connectors/salesforce/make_fixtures.py

One org, rendered in three wire formats: REST query pages (JSON, ``+0000`` datetimes, nested
relationship objects, ``null``), Bulk API 2.0 result pages (CSV, ``Z`` datetimes, empty = null)
and a weekly-export folder (CSV with BOM, ``1``/``0`` booleans, datetimes without zone, the
all-zero empty reference id, a recycle-bin row). The connectors must turn all three into the
same Snapshot.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

DATA = Path(__file__).parent / "data"
V = "v59.0"
INSTANCE = "https://acme.my.salesforce.com"

USERS = [
    {
        "Id": "0058d0000001AnnAAA",
        "Name": "Ann Lee",
        "Email": "ann.lee@acme.example",
        "IsActive": True,
        "ManagerId": "0058d0000001CarAAA",
        "Department": "East",
    },
    {
        "Id": "0058d0000001BobAAA",
        "Name": "Bob Stone",
        "Email": "bob.stone@acme.example",
        "IsActive": False,
        "ManagerId": "0058d0000001CarAAA",
        "Department": "West",
    },
    {
        "Id": "0058d0000001CarAAA",
        "Name": "Cara Diaz",
        "Email": "cara.diaz@acme.example",
        "IsActive": True,
        "ManagerId": None,
        "Department": None,
    },
]
OWNERS = {u["Id"]: u["Name"] for u in USERS}
ACCOUNTS = {"0018d0000002AcmAAA": "Acme Corp", "0018d0000002GloAAA": "Globex"}

_O = (
    "Id",
    "Name",
    "AccountId",
    "OwnerId",
    "StageName",
    "IsClosed",
    "IsWon",
    "Amount",
    "Probability",
    "ForecastCategoryName",
    "CloseDate",
    "CreatedDate",
    "LastModifiedDate",
    "LastActivityDate",
    "NextStep",
    "LeadSource",
    "Loss_Reason__c",
    "Next_Step_Date__c",
    "Budget__c",
    "SystemModstamp",
)
_ROWS = [
    (
        "0068d00000OpA01AAA",
        "Acme - Platform",
        "0018d0000002AcmAAA",
        "0058d0000001AnnAAA",
        "Negotiation/Review",
        False,
        False,
        120000.0,
        90.0,
        "Commit",
        "2024-06-30",
        "2024-01-10T09:00:00",
        "2024-05-02T10:00:00",
        "2024-04-28",
        "Send redlines",
        "Web",
        None,
        "2024-05-10",
        "Approved",
        "2024-05-02T10:00:00",
    ),
    (
        "0068d00000OpA02AAA",
        "Globex - Renewal",
        "0018d0000002GloAAA",
        "0058d0000001AnnAAA",
        "Closed Won",
        True,
        True,
        50000.0,
        100.0,
        "Closed",
        "2024-03-20",
        "2024-02-01T14:30:00",
        "2024-03-20T16:00:00",
        "2024-03-19",
        None,
        "Partner",
        None,
        None,
        "Approved",
        "2024-03-20T16:00:00",
    ),
    (
        "0068d00000OpA03AAA",
        "Unassigned - Lost deal",
        None,
        "0058d0000001BobAAA",
        "Closed Lost",
        True,
        False,
        None,
        0.0,
        "Omitted",
        "2024-03-01",
        "2024-02-05T08:15:00",
        "2024-03-01T12:00:00",
        None,
        None,
        None,
        "Price",
        None,
        None,
        "2024-03-01T12:00:00",
    ),
    (
        "0068d00000OpA04AAA",
        'Acme - Add-on, "Phase 2"',
        "0018d0000002AcmAAA",
        "0058d0000001CarAAA",
        "Proposal/Price Quote",
        False,
        False,
        18500.5,
        75.0,
        "Best Case",
        "2024-05-31",
        "2024-03-01T11:00:00",
        "2024-04-01T09:45:00",
        "2024-04-20",
        "Call CFO",
        "Web",
        None,
        "2024-04-05",
        None,
        "2024-04-01T09:45:00",
    ),
    (
        "0068d00000OpA05AAA",
        "Globex - Pilot",
        "0018d0000002GloAAA",
        "0058d0000001AnnAAA",
        "Discovery Call",
        False,
        False,
        9000.0,
        10.0,
        "Pipeline",
        "2024-07-15",
        "2024-04-05T10:00:00",
        "2024-04-05T10:00:00",
        None,
        None,
        "Event",
        None,
        None,
        None,
        "2024-04-05T10:00:00",
    ),
    (
        "0068d00000OpA06AAA",
        "Acme - Services",
        "0018d0000002AcmAAA",
        "0058d0000001AnnAAA",
        "Prospecting",
        False,
        False,
        None,
        10.0,
        "Pipeline",
        "2024-09-30",
        "2024-04-10T07:00:00",
        "2024-04-10T07:00:00",
        None,
        None,
        None,
        None,
        None,
        None,
        "2024-04-10T07:00:00",
    ),
    (
        "0068d00000OpA07AAA",
        "Globex - Expansion",
        "0018d0000002GloAAA",
        "0058d0000001CarAAA",
        "Value Proposition",
        False,
        False,
        42000.0,
        50.0,
        "Pipeline",
        "2024-08-31",
        "2024-04-15T13:00:00",
        "2024-04-20T13:00:00",
        "2024-04-20",
        "Demo for IT",
        "Web",
        None,
        None,
        "Pending",
        "2024-04-20T13:00:00",
    ),
]
OPPORTUNITIES = [dict(zip(_O, r, strict=True)) for r in _ROWS]
#: in the weekly export's recycle bin only: live pulls never see it
DELETED = dict(OPPORTUNITIES[5], Id="0068d00000OpA99AAA", Name="Deleted - Test deal")

_H = ("Id", "OpportunityId", "StageName", "CloseDate", "PrevCloseDate", "CreatedDate")
HISTORY = [
    dict(zip(_H, r, strict=True))
    for r in [
        (
            "0088d0000Hst001AAA",
            "0068d00000OpA01AAA",
            "Prospecting",
            "2024-05-31",
            None,
            "2024-01-10T09:00:00",
        ),
        (
            "0088d0000Hst002AAA",
            "0068d00000OpA01AAA",
            "Qualification",
            "2024-05-31",
            "2024-05-31",
            "2024-01-20T10:00:00",
        ),
        (
            "0088d0000Hst003AAA",
            "0068d00000OpA01AAA",
            "Qualification",
            "2024-05-31",
            "2024-05-31",
            "2024-02-01T10:00:00",
        ),
        (
            "0088d0000Hst004AAA",
            "0068d00000OpA01AAA",
            "Proposal/Price Quote",
            "2024-06-15",
            "2024-05-31",
            "2024-03-01T10:00:00",
        ),
        (
            "0088d0000Hst005AAA",
            "0068d00000OpA01AAA",
            "Negotiation/Review",
            "2024-06-30",
            "2024-06-15",
            "2024-04-10T10:00:00",
        ),
        (
            "0088d0000Hst006AAA",
            "0068d00000OpA02AAA",
            "Prospecting",
            "2024-03-31",
            None,
            "2024-02-01T14:30:00",
        ),
        (
            "0088d0000Hst007AAA",
            "0068d00000OpA02AAA",
            "Needs Analysis",
            "2024-03-31",
            "2024-03-31",
            "2024-02-15T09:00:00",
        ),
        (
            "0088d0000Hst008AAA",
            "0068d00000OpA02AAA",
            "Closed Won",
            "2024-03-20",
            "2024-03-31",
            "2024-03-20T16:00:00",
        ),
        (
            "0088d0000Hst009AAA",
            "0068d00000OpA03AAA",
            "Prospecting",
            "2024-03-15",
            None,
            "2024-02-05T08:15:00",
        ),
        (
            "0088d0000Hst010AAA",
            "0068d00000OpA03AAA",
            "Closed Lost",
            "2024-03-01",
            "2024-03-15",
            "2024-03-01T12:00:00",
        ),
        (
            "0088d0000Hst011AAA",
            "0068d00000OpA04AAA",
            "Qualification",
            "2024-05-31",
            None,
            "2024-03-01T11:00:00",
        ),
        (
            "0088d0000Hst012AAA",
            "0068d00000OpA04AAA",
            "Proposal/Price Quote",
            "2024-05-31",
            "2024-05-31",
            "2024-03-10T11:00:00",
        ),
        (
            "0088d0000Hst013AAA",
            "0068d00000OpA04AAA",
            "Qualification",
            "2024-05-31",
            "2024-05-31",
            "2024-03-20T11:00:00",
        ),
        (
            "0088d0000Hst014AAA",
            "0068d00000OpA04AAA",
            "Proposal/Price Quote",
            "2024-05-31",
            "2024-05-31",
            "2024-04-01T09:45:00",
        ),
        (
            "0088d0000Hst015AAA",
            "0068d00000OpA05AAA",
            "Discovery Call",
            "2024-07-15",
            None,
            "2024-04-05T10:00:00",
        ),
        # rows written before PrevCloseDate existed (API < 50): a push shows only row to row
        (
            "0088d0000Hst016AAA",
            "0068d00000OpA07AAA",
            "Value Proposition",
            "2024-07-31",
            None,
            "2024-04-15T13:00:00",
        ),
        (
            "0088d0000Hst017AAA",
            "0068d00000OpA07AAA",
            "Value Proposition",
            "2024-08-31",
            None,
            "2024-04-20T13:00:00",
        ),
        (
            "0088d0000Hst018AAA",
            "0068d00000OpA99AAA",
            "Prospecting",
            "2024-09-30",
            None,
            "2024-04-10T07:00:00",
        ),
    ]
]

_S = (
    "ApiName",
    "MasterLabel",
    "IsActive",
    "IsClosed",
    "IsWon",
    "SortOrder",
    "DefaultProbability",
    "ForecastCategoryName",
)
STAGES = [
    dict(zip(_S, r, strict=True))
    for r in [
        ("Prospecting", "Prospecting", True, False, False, 1, 10.0, "Pipeline"),
        ("Qualification", "Qualification", True, False, False, 2, 10.0, "Pipeline"),
        ("Discovery Call", "Discovery Call", True, False, False, 3, 10.0, "Pipeline"),
        ("Needs Analysis", "Needs Analysis", True, False, False, 4, 20.0, "Pipeline"),
        ("Value Proposition", "Value Proposition", True, False, False, 5, 50.0, "Pipeline"),
        ("Id. Decision Makers", "Id. Decision Makers", True, False, False, 6, 60.0, "Pipeline"),
        ("Perception Analysis", "Perception Analysis", True, False, False, 7, 70.0, "Pipeline"),
        ("Proposal/Price Quote", "Proposal/Price Quote", True, False, False, 8, 75.0, "Best Case"),
        ("Negotiation/Review", "Negotiation/Review", True, False, False, 9, 90.0, "Commit"),
        ("Closed Won", "Closed Won", True, True, True, 10, 100.0, "Closed"),
        ("Closed Lost", "Closed Lost", True, True, False, 11, 0.0, "Omitted"),
        ("Legacy Stage", "Legacy Stage", False, False, False, 12, 10.0, "Pipeline"),
    ]
]

OPP_SELECT = [
    f for f in _O if f not in ("Loss_Reason__c", "Next_Step_Date__c", "Budget__c", "SystemModstamp")
]


def rest_dt(v: str | None) -> str | None:
    return None if v is None else f"{v}.000+0000"


def bulk_dt(v: str | None) -> str | None:
    return None if v is None else f"{v}.000Z"


_DT = {"CreatedDate", "LastModifiedDate", "SystemModstamp"}


def rest_opportunity(o: dict) -> dict:
    rec: dict = {
        "attributes": {
            "type": "Opportunity",
            "url": f"/services/data/{V}/sobjects/Opportunity/{o['Id']}",
        }
    }
    for f in _O:
        if f == "AccountId":
            rec["AccountId"] = o["AccountId"]
            rec["Account"] = (
                None
                if o["AccountId"] is None
                else {
                    "attributes": {
                        "type": "Account",
                        "url": f"/services/data/{V}/sobjects/Account/{o['AccountId']}",
                    },
                    "Name": ACCOUNTS[o["AccountId"]],
                }
            )
        elif f == "OwnerId":
            rec["OwnerId"] = o["OwnerId"]
            rec["Owner"] = {**attrs("User", o["OwnerId"]), "Name": OWNERS[o["OwnerId"]]}
        else:
            rec[f] = rest_dt(o[f]) if f in _DT else o[f]
    return rec


def rest_pages(obj: str, records: list[dict], sizes: list[int], cursor: str) -> list[dict]:
    pages, start = [], 0
    for i, n in enumerate(sizes):
        body: dict = {"totalSize": len(records), "done": i == len(sizes) - 1}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/{V}/query/{cursor}-{start + n}"
        body["records"] = records[start : start + n]
        pages.append(body)
        start += n
    assert start == len(records), obj
    return pages


def attrs(obj: str, rid: str) -> dict:
    return {"attributes": {"type": obj, "url": f"/services/data/{V}/sobjects/{obj}/{rid}"}}


def csv_text(header: list[str], rows: list[list], *, bom: bool = False) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return ("\ufeff" if bom else "") + buf.getvalue()


def bulk_value(v: object, f: str) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return bulk_dt(v) if f in _DT else str(v)


def export_value(v: object, f: str) -> str:
    if v is None:
        return "000000000000000AAA" if f.endswith("Id") and f != "Id" else ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if f in _DT:
        return str(v).replace("T", " ")  # weekly export: UTC, no zone
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def main() -> None:
    rest = DATA / "rest"
    bulk = DATA / "bulk"
    export = DATA / "export"
    for d in (rest, bulk, export):
        d.mkdir(parents=True, exist_ok=True)
    live_opps = [rest_opportunity(o) for o in OPPORTUNITIES]
    live_hist = [h for h in HISTORY if h["OpportunityId"] != DELETED["Id"]]
    payloads = {
        "OpportunityStage": rest_pages(
            "OpportunityStage",
            [
                {**attrs("OpportunityStage", f"01J8d0000Stg{i:03d}AAA"), **s}
                for i, s in enumerate(STAGES)
            ],
            [len(STAGES)],
            "01gStages",
        ),
        "User": rest_pages(
            "User", [{**attrs("User", u["Id"]), **u} for u in USERS], [3], "01gUsers"
        ),
        "Opportunity": rest_pages("Opportunity", live_opps, [3, 3, 1], "01gD0000002HU6KIAW"),
        "OpportunityHistory": rest_pages(
            "OpportunityHistory",
            [
                {
                    **attrs("OpportunityHistory", h["Id"]),
                    **h,
                    "CreatedDate": rest_dt(h["CreatedDate"]),
                }
                for h in live_hist
            ],
            [10, len(live_hist) - 10],
            "01gD0000002HistXYZ",
        ),
    }
    for obj, pages in payloads.items():
        (rest / f"{obj}.json").write_text(json.dumps(pages, indent=1) + "\n")

    # Bulk 2.0 result pages: same records, CSV, header row on each page
    opp_cols = ["Id", "Name", "AccountId", "Account.Name", "OwnerId", "Owner.Name", *_O[4:]]
    related = {
        "Account.Name": lambda o: ACCOUNTS.get(o["AccountId"]),
        "Owner.Name": lambda o: OWNERS[o["OwnerId"]],
    }
    opp_rows = [
        [bulk_value(related[f](o) if f in related else o[f], f) for f in opp_cols]
        for o in OPPORTUNITIES
    ]
    (bulk / "Opportunity_1.csv").write_text(csv_text(opp_cols, opp_rows[:4]))
    (bulk / "Opportunity_2.csv").write_text(csv_text(opp_cols, opp_rows[4:]))
    hist_rows = [
        [bulk_value(h[f], f) if f != "CreatedDate" else bulk_dt(h[f]) for f in _H]
        for h in live_hist
    ]
    (bulk / "OpportunityHistory_1.csv").write_text(csv_text(list(_H), hist_rows))

    # weekly export: BOM, extra columns, 1/0, naive datetimes, empty reference ids
    exp_cols = [
        "Id",
        "IsDeleted",
        "AccountId",
        "RecordTypeId",
        *_O[1:2],
        "Description",
        *[f for f in _O[3:] if f != "SystemModstamp"],
        "Type",
        "CurrencyIsoCode",
        "FiscalYear",
        "SystemModstamp",
    ]
    extra = {
        "RecordTypeId": None,
        "Description": None,
        "Type": "New Business",
        "CurrencyIsoCode": "USD",
        "FiscalYear": "2024",
    }
    rows = []
    for o in [*OPPORTUNITIES, DELETED]:
        full = {**o, **extra, "IsDeleted": o["Id"] == DELETED["Id"]}
        rows.append([export_value(full[f], f) for f in exp_cols])
    (export / "Opportunity.csv").write_text(csv_text(exp_cols, rows, bom=True))
    (export / "OpportunityHistory.csv").write_text(
        csv_text(
            ["Id", "IsDeleted", *_H[1:], "Amount", "Probability"],
            [[h["Id"], "0", *[export_value(h[f], f) for f in _H[1:]], "", ""] for h in HISTORY],
            bom=True,
        )
    )
    (export / "User.csv").write_text(
        csv_text(
            ["Id", "Username", "Name", "Email", "IsActive", "ManagerId", "Department", "UserType"],
            [
                [
                    u["Id"],
                    u["Email"],
                    u["Name"],
                    u["Email"],
                    "true" if u["IsActive"] else "false",
                    export_value(u["ManagerId"], "ManagerId"),
                    u["Department"] or "",
                    "Standard",
                ]
                for u in USERS
            ],
            bom=True,
        )
    )
    (export / "Account.csv").write_text(
        csv_text(
            ["Id", "IsDeleted", "Name", "Type"],
            [[k, "0", v, "Customer"] for k, v in ACCOUNTS.items()],
            bom=True,
        )
    )
    (export / "OpportunityStage.csv").write_text(
        csv_text(list(_S), [[export_value(s[f], f) for f in _S] for s in STAGES], bom=True)
    )


if __name__ == "__main__":
    main()
