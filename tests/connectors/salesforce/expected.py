"""The Snapshot the fixture org must produce, written out by hand (not computed)."""

from __future__ import annotations

import pandas as pd

from auditor.snapshot import make_opportunities, make_owners, make_stage_history

NA = pd.NA
NAT = None
U = "https://acme.my.salesforce.com/lightning/r/Opportunity/{}/view"

_COLS = (
    "id",
    "name",
    "account_id",
    "account_name",
    "owner_id",
    "stage",
    "source_stage",
    "is_closed",
    "is_won",
    "amount",
    "probability",
    "forecast_category",
    "close_date",
    "created_at",
    "updated_at",
    "stage_entered_at",
    "last_activity_at",
    "next_step",
    "next_step_due",
    "loss_reason",
    "lead_source",
    "close_date_changes",
    "budget",
)
_ROWS = [
    (
        "0068d00000OpA01AAA",
        "Acme - Platform",
        "0018d0000002AcmAAA",
        "Acme Corp",
        "0058d0000001AnnAAA",
        "negotiation",
        "Negotiation/Review",
        False,
        False,
        120000.0,
        0.9,
        "commit",
        "2024-06-30",
        "2024-01-10T09:00Z",
        "2024-05-02T10:00Z",
        "2024-04-10T10:00Z",
        "2024-04-28T00:00Z",
        "Send redlines",
        "2024-05-10",
        NA,
        "Web",
        2,
        "Approved",
    ),
    (
        "0068d00000OpA02AAA",
        "Globex - Renewal",
        "0018d0000002GloAAA",
        "Globex",
        "0058d0000001AnnAAA",
        "closed_won",
        "Closed Won",
        True,
        True,
        50000.0,
        1.0,
        "closed",
        "2024-03-20",
        "2024-02-01T14:30Z",
        "2024-03-20T16:00Z",
        "2024-03-20T16:00Z",
        "2024-03-19T00:00Z",
        NA,
        NAT,
        NA,
        "Partner",
        1,
        "Approved",
    ),
    (
        "0068d00000OpA03AAA",
        "Unassigned - Lost deal",
        NA,
        NA,
        "0058d0000001BobAAA",
        "closed_lost",
        "Closed Lost",
        True,
        False,
        NA,
        0.0,
        "omitted",
        "2024-03-01",
        "2024-02-05T08:15Z",
        "2024-03-01T12:00Z",
        "2024-03-01T12:00Z",
        NAT,
        NA,
        NAT,
        "Price",
        NA,
        1,
        NA,
    ),
    (
        "0068d00000OpA04AAA",
        'Acme - Add-on, "Phase 2"',
        "0018d0000002AcmAAA",
        "Acme Corp",
        "0058d0000001CarAAA",
        "proposal",
        "Proposal/Price Quote",
        False,
        False,
        18500.5,
        0.75,
        "best_case",
        "2024-05-31",
        "2024-03-01T11:00Z",
        "2024-04-01T09:45Z",
        "2024-04-01T09:45Z",
        "2024-04-20T00:00Z",
        "Call CFO",
        "2024-04-05",
        NA,
        "Web",
        0,
        NA,
    ),
    (
        "0068d00000OpA05AAA",
        "Globex - Pilot",
        "0018d0000002GloAAA",
        "Globex",
        "0058d0000001AnnAAA",
        NA,
        "Discovery Call",
        False,
        False,
        9000.0,
        0.1,
        "pipeline",
        "2024-07-15",
        "2024-04-05T10:00Z",
        "2024-04-05T10:00Z",
        "2024-04-05T10:00Z",
        NAT,
        NA,
        NAT,
        NA,
        "Event",
        0,
        NA,
    ),
    (
        "0068d00000OpA06AAA",
        "Acme - Services",
        "0018d0000002AcmAAA",
        "Acme Corp",
        "0058d0000001AnnAAA",
        "contact",
        "Prospecting",
        False,
        False,
        NA,
        0.1,
        "pipeline",
        "2024-09-30",
        "2024-04-10T07:00Z",
        "2024-04-10T07:00Z",
        NAT,
        NAT,
        NA,
        NAT,
        NA,
        NA,
        0,
        NA,
    ),
    (
        "0068d00000OpA07AAA",
        "Globex - Expansion",
        "0018d0000002GloAAA",
        "Globex",
        "0058d0000001CarAAA",
        "solution",
        "Value Proposition",
        False,
        False,
        42000.0,
        0.5,
        "pipeline",
        "2024-08-31",
        "2024-04-15T13:00Z",
        "2024-04-20T13:00Z",
        "2024-04-15T13:00Z",
        "2024-04-20T00:00Z",
        "Demo for IT",
        NAT,
        NA,
        "Web",
        1,
        "Pending",
    ),
]


def opportunities(source: str = "acme") -> pd.DataFrame:
    df = pd.DataFrame([dict(zip(_COLS, r, strict=True)) for r in _ROWS])
    df["source"] = source
    df["url"] = [U.format(i) for i in df["id"]]
    df["currency"] = "USD"
    for col in ("created_at", "updated_at", "stage_entered_at", "last_activity_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    for col in ("close_date", "next_step_due"):
        df[col] = pd.to_datetime(df[col])
    df["budget"] = df["budget"].astype("string[pyarrow]")
    budget = df.pop("budget")
    # the hand-written flags are complete, so open / lost follow from them alone
    closed, won = df["is_closed"].astype("boolean"), df["is_won"].astype("boolean")
    df["is_open"], df["is_lost"] = ~closed, closed & ~won
    out = make_opportunities(df)
    out["budget"] = budget
    return out


_H = [
    ("0068d00000OpA01AAA", "contact", "Prospecting", "2024-01-10T09:00Z"),
    ("0068d00000OpA01AAA", "qualification", "Qualification", "2024-01-20T10:00Z"),
    ("0068d00000OpA01AAA", "proposal", "Proposal/Price Quote", "2024-03-01T10:00Z"),
    ("0068d00000OpA01AAA", "negotiation", "Negotiation/Review", "2024-04-10T10:00Z"),
    ("0068d00000OpA02AAA", "contact", "Prospecting", "2024-02-01T14:30Z"),
    ("0068d00000OpA02AAA", "discovery", "Needs Analysis", "2024-02-15T09:00Z"),
    ("0068d00000OpA02AAA", "closed_won", "Closed Won", "2024-03-20T16:00Z"),
    ("0068d00000OpA03AAA", "contact", "Prospecting", "2024-02-05T08:15Z"),
    ("0068d00000OpA03AAA", "closed_lost", "Closed Lost", "2024-03-01T12:00Z"),
    ("0068d00000OpA04AAA", "qualification", "Qualification", "2024-03-01T11:00Z"),
    ("0068d00000OpA04AAA", "proposal", "Proposal/Price Quote", "2024-03-10T11:00Z"),
    ("0068d00000OpA04AAA", "qualification", "Qualification", "2024-03-20T11:00Z"),
    ("0068d00000OpA04AAA", "proposal", "Proposal/Price Quote", "2024-04-01T09:45Z"),
    ("0068d00000OpA05AAA", NA, "Discovery Call", "2024-04-05T10:00Z"),
    ("0068d00000OpA07AAA", "solution", "Value Proposition", "2024-04-15T13:00Z"),
]


def stage_history() -> pd.DataFrame:
    df = pd.DataFrame(_H, columns=["opportunity_id", "stage", "source_stage", "entered_at"])
    df["entered_at"] = pd.to_datetime(df["entered_at"], utc=True)
    return make_stage_history(df)


def owners() -> pd.DataFrame:
    return make_owners(
        pd.DataFrame(
            {
                "id": ["0058d0000001AnnAAA", "0058d0000001BobAAA", "0058d0000001CarAAA"],
                "name": ["Ann Lee", "Bob Stone", "Cara Diaz"],
                "email": [
                    "ann.lee@acme.example",
                    "bob.stone@acme.example",
                    "cara.diaz@acme.example",
                ],
                "active": [True, False, True],
                "manager_id": ["0058d0000001CarAAA", "0058d0000001CarAAA", NA],
                "team": ["East", "West", NA],
            }
        )
    )


PROVIDED = frozenset(
    {
        "id",
        "source",
        "url",
        "name",
        "account_id",
        "account_name",
        "owner_id",
        "stage",
        "source_stage",
        "is_closed",
        "is_won",
        "amount",
        "currency",
        "probability",
        "forecast_category",
        "close_date",
        "created_at",
        "updated_at",
        "stage_entered_at",
        "last_activity_at",
        "next_step",
        "next_step_due",
        "loss_reason",
        "lead_source",
        "close_date_changes",
        "budget",
    }
)
UNMAPPED_WARNING = (
    "Salesforce stage 'Discovery Call' is not in the stage map (used by 1 opportunity); "
    "add it to source.stage_map"
)
