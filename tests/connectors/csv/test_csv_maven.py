"""The public Maven sample through the shipped config (examples/maven/maven.toml).

Counts are the facts measured on the dataset (see tests/data/maven/ATTRIBUTION.md and
docs/connectors/csv.md); they would change if parsing, mapping or rejection broke.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from auditor.config import load_config
from auditor.snapshot import Snapshot
from connectors.registry import build_connector

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "examples" / "maven" / "maven.toml"


@pytest.fixture(scope="module")
def snap() -> Snapshot:
    return build_connector(load_config(CONFIG)).pull()


def test_everything_loads(snap: Snapshot) -> None:
    assert snap.meta.loaded_rows == 8800
    assert snap.meta.rejected == []
    assert snap.meta.unmapped_stages == {}
    assert snap.meta.warnings == []
    assert snap.meta.extra["rows_read"] == {"sales_pipeline.csv": 8800, "accounts.csv": 85}
    assert snap.meta.source == "maven-sample"
    snap.validate()


def test_stage_counts(snap: Snapshot) -> None:
    o = snap.opportunities
    assert o["stage"].value_counts()[["closed_won", "closed_lost", "contact", "lead"]].tolist() == [
        4238,
        2473,
        1589,
        500,
    ]
    assert o["source_stage"].value_counts().to_dict() == {
        "Won": 4238,
        "Lost": 2473,
        "Engaging": 1589,
        "Prospecting": 500,
    }
    assert int(o["is_closed"].sum()) == 6711
    assert int(o["is_won"].sum()) == 4238
    assert snap.meta.reached_stages == frozenset({"lead", "contact", "closed_won", "closed_lost"})


def test_empty_fields_are_missing_values(snap: Snapshot) -> None:
    o = snap.opportunities
    assert int(o["account_id"].isna().sum()) == 1425
    assert int(o["account_name"].isna().sum()) == 1425
    open_ = o["stage"].isin(["lead", "contact"])
    assert int(open_.sum()) == 2089
    assert o.loc[open_, "close_date"].isna().all() and o.loc[open_, "amount"].isna().all()
    assert o.loc[~open_, "close_date"].notna().all() and o.loc[~open_, "amount"].notna().all()
    # engage_date (→ created_at) is empty exactly for the Prospecting deals
    assert (o["created_at"].isna() == (o["stage"] == "lead")).all()
    # lost deals keep their 0, they are not "no amount"
    assert (o.loc[o["stage"] == "closed_lost", "amount"] == 0).all()
    assert o.loc[o["stage"] == "closed_won", "amount"].sum() == 10_005_534


def test_values_and_ranges(snap: Snapshot) -> None:
    o = snap.opportunities
    first = o.iloc[0]
    assert (first["id"], first["owner_id"], first["name"], first["product"]) == (
        "1C1I7A6R",
        "Moses Frase",
        "Cancity – GTX Plus Basic",
        "GTX Plus Basic",
    )
    assert first["created_at"] == pd.Timestamp("2016-10-20", tz="UTC")
    assert first["close_date"] == pd.Timestamp("2017-03-01")
    assert first["amount"] == 1054 and first["currency"] == "USD"
    assert o["created_at"].min() == pd.Timestamp("2016-10-20", tz="UTC")
    assert o["created_at"].max() == pd.Timestamp("2017-12-27", tz="UTC")
    assert (o["close_date"].min(), o["close_date"].max()) == (
        pd.Timestamp("2017-03-01"),
        pd.Timestamp("2017-12-31"),
    )
    # no account: the name is the product alone
    assert o.loc[o["account_name"].isna(), "name"].iloc[0] == "MG Advanced"
    assert o["name"].notna().all()
    assert int((o["product"] == "GTXPro").sum()) > 0  # dirt kept as it is


def test_accounts_lookup_adds_sector(snap: Snapshot) -> None:
    o = snap.opportunities
    assert list(o.columns[-3:]) == ["product", "sector", "office_location"]
    assert o["sector"].dtype == "string[pyarrow]"
    assert int(o["sector"].isna().sum()) == 1425  # exactly the rows without account
    assert o.loc[0, "sector"] == "retail" and o.loc[0, "account_name"] == "Cancity"
    # the source's typo is data, not ours to fix
    assert o.loc[o["account_name"] == "Acme Corporation", "sector"].unique().tolist() == [
        "technolgy"
    ]


def test_owners_are_agents_plus_managers(snap: Snapshot) -> None:
    w = snap.owners
    assert len(w) == 41  # 35 agents + 6 managers
    managers = w[w["manager_id"].isna()]
    assert sorted(managers["id"]) == [
        "Cara Losch",
        "Celia Rouche",
        "Dustin Brinkmann",
        "Melvin Marxen",
        "Rocco Neubert",
        "Summer Sewald",
    ]
    assert w.set_index("id").loc["Dustin Brinkmann", "team"] == "Central"
    assert w.set_index("id").loc["Moses Frase", "manager_id"] == "Dustin Brinkmann"
    assert w["team"].value_counts().to_dict() == {"East": 14, "West": 14, "Central": 13}
    # every one of the 30 agents with deals is in the owners frame
    assert snap.opportunities["owner_id"].nunique() == 30
    assert snap.opportunities["owner_id"].isin(w["id"]).all()


def test_provided_fields_make_missing_ones_not_evaluable(snap: Snapshot) -> None:
    assert snap.meta.provided_fields == frozenset(
        {
            "id",
            "source",
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
            "close_date",
            "created_at",
        }
    )
    assert snap.meta.has_stage_history is False
    assert snap.stage_history.empty
