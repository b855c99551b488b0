"""CsvConnector on small handmade files in data/: values, dtypes, rejections and messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from auditor.config import parse_config
from auditor.errors import ConfigError, SourceDataError
from auditor.snapshot import OPPORTUNITY_SCHEMA, Snapshot
from connectors.csv_source import CsvConnector, CsvOptions
from connectors.registry import build_connector

DATA = Path(__file__).parent / "data"

GOOD_COLUMNS = {
    "id": "Deal ID",
    "name": "Deal Name",
    "account_name": "Account",
    "owner_id": "Owner",
    "stage": "Stage",
    "amount": "Amount",
    "currency": "Currency",
    "probability": "Probability",
    "forecast_category": "Forecast",
    "close_date": "Close Date",
    "created_at": "Created",
    "updated_at": "Last Modified",
    "next_step": "Next Step",
    "next_step_due": "Next Step Date",
    "loss_reason": "Loss Reason",
    "lead_source": "Lead Source",
    "is_closed": "Closed",
    "is_won": "Won",
    "close_date_changes": "Slips",
}


def pull(**options: Any) -> Snapshot:
    opts = CsvOptions.model_validate(options)
    return CsvConnector(opts, base_dir=DATA).pull()


def pull_good(**extra: Any) -> Snapshot:
    options: dict[str, Any] = {
        "opportunities": "deals_good.csv",
        "columns": GOOD_COLUMNS,
        "stage_map_default": "salesforce",
        "timezone": "Europe/Berlin",
        "currency": "USD",
        "extra_columns": {"budget": "Budget"},
        "url_template": "https://crm.example.com/deals/{Deal ID}",
    }
    return pull(**{**options, **extra})


def messages(snap: Snapshot) -> list[str]:
    return [f"{r.where}: {r.reason}" for r in snap.meta.rejected]


def values(s: pd.Series) -> list[Any]:
    return [None if pd.isna(v) else v for v in s.tolist()]


# -- a clean file with every kind of column ---------------------------------------------------


def test_good_file_values() -> None:
    snap = pull_good()
    o = snap.opportunities
    assert list(o["id"]) == ["D-1", "D-2", "D-3", "D-4"]
    assert values(o["stage"].astype(object)) == [
        "contact",
        "negotiation",
        "closed_won",
        "closed_lost",
    ]
    assert values(o["source_stage"]) == [
        "Prospecting",
        "Negotiation/Review",
        "Closed Won",
        "closed lost",
    ]
    assert values(o["amount"]) == [1200.5, -100.0, 12.0, 0.0]
    # D-1 has no code (default USD), D-2 lower-case code, D-3 "€" in the amount text
    assert values(o["currency"]) == ["USD", "USD", "EUR", "USD"]
    # column is in percent (a value > 1), "10%" too
    assert values(o["probability"]) == [0.1, 0.8, 1.0, 0.0]
    assert values(o["forecast_category"]) == ["pipeline", "best_case", "closed", "omitted"]
    assert values(o["close_date"]) == [
        pd.Timestamp("2024-03-31"),
        pd.Timestamp("2024-04-15"),
        pd.Timestamp("2024-04-15"),
        pd.Timestamp("2024-04-01"),
    ]
    assert values(o["created_at"]) == [
        pd.Timestamp("2024-01-05 09:30", tz="UTC"),
        pd.Timestamp("2024-01-06 07:30", tz="UTC"),  # +02:00 offset honoured
        pd.Timestamp("2024-01-06 23:00", tz="UTC"),  # naive date = midnight in Berlin
        pd.Timestamp("2024-01-07 23:00", tz="UTC"),
    ]
    assert o["updated_at"].iloc[0] == pd.Timestamp("2024-02-01 09:00", tz="UTC")
    assert values(o["next_step"]) == ["Call CFO", None, None, None]
    assert values(o["next_step_due"]) == [pd.Timestamp("2024-02-10"), None, None, None]
    assert values(o["loss_reason"]) == [None, None, None, "Price"]
    assert values(o["lead_source"]) == ["Web", "Referral", None, "Event"]  # " " is missing
    assert values(o["account_name"]) == ["Acme", "Beta", "Gamma", None]
    # D-2 has empty Closed/Won cells: filled from its common stage
    assert values(o["is_closed"]) == [False, False, True, True]
    assert values(o["is_won"]) == [False, False, True, False]
    assert values(o["close_date_changes"]) == [0, 2, 1, None]
    assert values(o["budget"]) == ["yes", None, "no", None]
    assert o["url"].iloc[1] == "https://crm.example.com/deals/D-2"
    assert set(o["source"]) == {"csv"}
    assert snap.meta.rejected == [] and snap.meta.warnings == []
    assert snap.meta.loaded_rows == 4


def test_good_file_schema_and_meta() -> None:
    snap = pull_good()
    snap.validate()
    o = snap.opportunities
    for col, dtype in OPPORTUNITY_SCHEMA.items():
        assert o[col].dtype == dtype, col
    assert list(o.columns) == [*OPPORTUNITY_SCHEMA, "budget"]
    assert o["budget"].dtype == "string[pyarrow]"
    assert snap.meta.provided_fields == frozenset(GOOD_COLUMNS) - {"stage"} | {
        "source",
        "stage",
        "source_stage",
        "url",
    }
    assert snap.meta.has_stage_history is False
    assert snap.meta.source_type == "csv"
    assert "salesforce" not in snap.meta.reached_stages
    # the stages the export holds (mapped), not every stage of the shipped default map (#14)
    assert snap.meta.reached_stages == frozenset(
        snap.opportunities["stage"].dropna().astype(str)
    ) == frozenset({"contact", "negotiation", "closed_won", "closed_lost"})
    # no owners file: owners are the distinct owner ids
    assert list(snap.owners["id"]) == ["u1", "u2", "u3"]
    assert snap.stage_history.empty


# -- bad rows -----------------------------------------------------------------------------------


def test_bad_rows_rejected_with_row_and_reason() -> None:
    snap = pull(opportunities="deals_bad.csv", stage_map_default="salesforce")
    assert messages(snap) == [
        "deals_bad.csv row 3: column id: the id is empty",
        "deals_bad.csv row 4: column id: duplicate id 'A1' (first on row 2)",
        "deals_bad.csv row 5: column close_date: cannot parse '2024-02-30' as a date",
        "deals_bad.csv row 7: column amount: cannot parse '1.200,50' as an amount "
        "(decimal separator '.')",
        "deals_bad.csv row 9: column stage: the stage is empty",
        "deals_bad.csv row 10: column is_closed: cannot parse 'maybe' as true/false",
        "deals_bad.csv row 11: column close_date: cannot parse 'someday' as a date; "
        "column amount: cannot parse 'abc' as an amount (decimal separator '.')",
    ]
    assert list(snap.opportunities["id"]) == ["A1", "A7", "A11"]
    assert snap.meta.loaded_rows == 3
    # the unknown stage is kept, with stage NA, and reported
    a7 = snap.opportunities.iloc[1]
    assert pd.isna(a7["stage"]) and a7["source_stage"] == "Demo Booked"
    # no closed flag and no mapped stage: open (auditor/lifecycle.py, step 3)
    assert a7["is_open"] and not a7["is_closed"] and not a7["is_won"] and not a7["is_lost"]
    assert snap.meta.unmapped_stages == {"Demo Booked": 1}
    assert snap.meta.warnings == [
        "deals_bad.csv: 7 of 10 rows rejected",
        "deals_bad.csv: stage 'Demo Booked' (1 records) is not in the stage map; "
        "add it to `source.stage_map`",
    ]
    assert snap.meta.extra["blank_rows"] == {"deals_bad.csv": 1}
    assert snap.meta.to_dict()["rejected_count"] == 7
    snap.validate()


def test_unknown_stage_rejected_in_strict_mode() -> None:
    snap = pull(
        opportunities="deals_bad.csv", stage_map_default="salesforce", unknown_stage="reject"
    )
    assert "deals_bad.csv row 8: column stage: stage 'Demo Booked' is not in the stage map" in (
        messages(snap)
    )
    assert list(snap.opportunities["id"]) == ["A1", "A11"]
    assert snap.meta.unmapped_stages == {}


def test_too_many_rejections_stop_the_pull() -> None:
    with pytest.raises(SourceDataError) as err:
        pull(opportunities="deals_bad.csv", stage_map_default="salesforce", max_rejected_share=0.5)
    assert str(err.value).startswith(
        "deals_bad.csv: 7 of 10 rows rejected (more than source.max_rejected_share = 0.5); "
        "first reasons:\n  deals_bad.csv row 3: column id: the id is empty\n"
    )


# -- whole-file problems: clear messages --------------------------------------------------------


def test_missing_mapped_column_names_file_column_and_headers() -> None:
    with pytest.raises(SourceDataError) as err:
        pull_good(columns={**GOOD_COLUMNS, "close_date": "Closing Date"})
    assert str(err.value) == (
        "deals_good.csv: column 'Closing Date' (mapped by `source.columns.close_date`) is not in "
        "the header (did you mean 'Close Date'?); headers found: Deal ID, Deal Name, Account, "
        "Owner, Stage, Amount, Currency, Probability, Forecast, Close Date, Created, "
        "Last Modified, Next Step, Next Step Date, Loss Reason, Lead Source, Closed, Won, Slips, "
        "Budget"
    )


def test_no_id_column() -> None:
    with pytest.raises(
        SourceDataError,
        match=r"^deals_slash.csv: no column gives the "
        r"opportunity id; map it with `source.columns.id` \(headers found: "
        r"id, stage, close_date\)$",
    ):
        pull(
            opportunities="deals_slash.csv",
            stage_map_default="salesforce",
            columns={"stage": "stage"},
        )


def test_slash_date_order_decided_by_the_file() -> None:
    """13/04/2024 can only be day first, so 03/04/2024 in the same file is 3 April."""
    snap = pull(opportunities="deals_slash.csv", stage_map_default="salesforce")
    assert list(snap.opportunities["close_date"]) == [
        pd.Timestamp(d) for d in ("2024-01-31", "2024-04-03", "2024-04-13")]


def test_ambiguous_slash_dates_are_refused_with_samples(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("id,stage,close_date\nA,Prospecting,03/04/2024\n"
                                    "B,Prospecting,12/11/24\n")
    opts = CsvOptions.model_validate({"opportunities": "d.csv", "stage_map_default": "salesforce"})
    with pytest.raises(SourceDataError) as err:
        CsvConnector(opts, base_dir=tmp_path).pull()
    assert str(err.value) == (
        "d.csv: dates such as '03/04/2024' (column close_date, row 2), '12/11/24' (column "
        "close_date, row 3) could be day/month or month/day, and no value in the file decides "
        "it (none has a day over 12); set source.date_order = \"day_first\" (31/12/2024) or "
        "\"month_first\" (12/31/2024)"
    )


def test_dates_in_both_orders_are_refused(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("id,stage,close_date\nA,Prospecting,31/12/2024\n"
                                    "B,Prospecting,12/31/2024\n")
    opts = CsvOptions.model_validate({"opportunities": "d.csv", "stage_map_default": "salesforce"})
    with pytest.raises(SourceDataError) as err:
        CsvConnector(opts, base_dir=tmp_path).pull()
    assert str(err.value).startswith(
        "d.csv: dates in both orders — '31/12/2024' (column close_date, row 2) is day first, "
        "'12/31/2024' (column close_date, row 3) is month first;")


@pytest.mark.parametrize(
    ("order", "expected", "rejected"),
    [
        ("day_first", ["2024-01-31", "2024-04-03", "2024-04-13"], []),
        (
            "month_first",
            ["2024-01-31", "2024-03-04"],
            ["deals_slash.csv row 4: column close_date: cannot parse '13/04/2024' as a "
             "month/day/year date (13 cannot be a month; order from source.date_order = "
             "\"month_first\")"],
        ),
    ],
)
def test_date_order_setting_wins(order: str, expected: list[str], rejected: list[str]) -> None:
    snap = pull(opportunities="deals_slash.csv", stage_map_default="salesforce", date_order=order)
    assert list(snap.opportunities["close_date"]) == [pd.Timestamp(d) for d in expected]
    assert messages(snap) == rejected
    # the older spelling still works
    old = pull(opportunities="deals_slash.csv", stage_map_default="salesforce",
               dayfirst=order == "day_first")
    assert list(old.opportunities["close_date"]) == [pd.Timestamp(d) for d in expected]


def test_impossible_date_messages(tmp_path: Path) -> None:
    """31/12/2024 read month first: 31 cannot be a month; 31/02/2024 day first: no such day."""
    (tmp_path / "d.csv").write_text("id,stage,close_date\nA,Prospecting,31/12/2024\n"
                                    "B,Prospecting,31/02/2024\nC,Prospecting,01/02/2024\n")
    opts = CsvOptions.model_validate({"opportunities": "d.csv", "stage_map_default": "salesforce"})
    snap = CsvConnector(opts, base_dir=tmp_path).pull()
    assert [f"{r.where}: {r.reason}" for r in snap.meta.rejected] == [
        "d.csv row 3: column close_date: cannot parse '31/02/2024' as a day/month/year date (no "
        "such day in that month; order from the file's other dates; set source.date_order to "
        "override)"]
    opts = CsvOptions.model_validate({"opportunities": "d.csv", "stage_map_default": "salesforce",
                                      "date_order": "month_first"})
    snap = CsvConnector(opts, base_dir=tmp_path).pull()
    assert [f"{r.where}: {r.reason}" for r in snap.meta.rejected][:2] == [
        "d.csv row 2: column close_date: cannot parse '31/12/2024' as a month/day/year date (31 "
        "cannot be a month; order from source.date_order = \"month_first\")",
        "d.csv row 3: column close_date: cannot parse '31/02/2024' as a month/day/year date (31 "
        "cannot be a month; order from source.date_order = \"month_first\")",
    ]


def test_missing_file() -> None:
    with pytest.raises(SourceDataError, match=r"^opportunities file .*nope.csv does not exist$"):
        pull(opportunities="nope.csv", stage_map_default="salesforce")


def test_wrong_encoding(tmp_path: Path) -> None:
    """Detected by default; an explicit setting wins, and its failure names byte, row, fix."""
    text = "id,stage,name\n1,Prospecting,M\xfcller\n"
    (tmp_path / "latin.csv").write_bytes(text.encode("latin-1"))
    opts = CsvOptions.model_validate(
        {"opportunities": "latin.csv", "stage_map_default": "salesforce"}
    )
    snap = CsvConnector(opts, base_dir=tmp_path).pull()
    assert snap.opportunities["name"].iloc[0] == "Müller"
    assert snap.meta.extra["encodings"]["latin.csv"]["encoding"] == "cp1252"
    assert snap.meta.extra["encodings"]["latin.csv"]["detected"] is True
    opts = CsvOptions.model_validate(
        {"opportunities": "latin.csv", "stage_map_default": "salesforce", "encoding": "utf-8"}
    )
    with pytest.raises(SourceDataError) as err:
        CsvConnector(opts, base_dir=tmp_path).pull()
    assert str(err.value) == (
        'latin.csv: byte 29 (row 2) is not valid utf-8 text (bytes fc 6c 6c 65); set '
        'source.encoding = "cp1252" (detected with confidence 100%) or "auto"'
    )
    opts = CsvOptions.model_validate(
        {"opportunities": "latin.csv", "encoding": "latin-1", "stage_map_default": "salesforce"}
    )
    assert CsvConnector(opts, base_dir=tmp_path).pull().opportunities["name"].iloc[0] == "Müller"


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    opts = CsvOptions.model_validate(
        {"opportunities": "empty.csv", "stage_map_default": "salesforce"}
    )
    with pytest.raises(SourceDataError, match=r"^empty.csv: the file is empty \(expected a header"):
        CsvConnector(opts, base_dir=tmp_path).pull()


def test_header_only_file_loads_nothing(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text("id,stage\n")
    opts = CsvOptions.model_validate({"opportunities": "h.csv", "stage_map_default": "hubspot"})
    snap = CsvConnector(opts, base_dir=tmp_path).pull()
    assert snap.meta.loaded_rows == 0 and len(snap.opportunities) == 0


def test_no_stage_map_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^source: no stage map"):
        pull(opportunities="deals_bad.csv")


# -- European formats ---------------------------------------------------------------------------


def test_european_file() -> None:
    snap = pull(
        opportunities="deals_eu.csv",
        delimiter=";",
        decimal=",",
        stage_map_default="salesforce",
        true_values=["ja"],
        false_values=["nein"],
    )
    o = snap.opportunities
    assert list(o["id"]) == ["E1", "E2", "E3"]
    assert values(o["amount"]) == [1200.5, 1200.0, 12.5]
    assert values(o["currency"]) == [None, "EUR", "EUR"]
    assert values(o["is_won"]) == [True, False, True]
    assert values(o["close_date"]) == [pd.Timestamp(f"2024-04-{d}") for d in (15, 16, 17)]
    assert messages(snap) == [
        "deals_eu.csv row 5: column amount: cannot parse '1,200.50' as an amount "
        "(decimal separator ',')"
    ]


# -- stage history ------------------------------------------------------------------------------


def test_stage_history() -> None:
    snap = pull_good(stage_history="history.csv")
    h = snap.stage_history
    assert snap.meta.has_stage_history is True
    assert list(h["opportunity_id"]) == ["D-1", "D-2", "D-2", "D-2", "D-3", "D-3"]
    assert values(h["stage"].astype(object)) == [
        "contact",
        "contact",
        "qualification",
        "negotiation",
        None,
        "closed_won",
    ]
    assert values(h["source_stage"])[4] == "Mystery"
    assert [r for r in messages(snap) if r.startswith("history.csv")] == [
        "history.csv row 6: column opportunity_id: opportunity 'D-9' is not among the loaded "
        "opportunities",
        "history.csv row 7: column entered_at: cannot parse 'not a date' as a date and time",
    ]
    assert snap.meta.warnings == [
        "history.csv: 2 of 8 rows rejected",
        "history.csv: stage 'Mystery' (1 records) is not in the stage map; add it to "
        "`source.stage_map`",
    ]
    # stage_entered_at comes from the history: last entry into the current stage
    assert values(snap.opportunities["stage_entered_at"]) == [
        pd.Timestamp("2024-01-05 09:30", tz="UTC"),
        pd.Timestamp("2024-02-01 08:00", tz="UTC"),
        pd.Timestamp("2024-04-15 12:00", tz="UTC"),
        None,
    ]
    assert "stage_entered_at" in snap.meta.provided_fields
    snap.validate()


# -- owners -------------------------------------------------------------------------------------


def test_owners_file_with_managers() -> None:
    snap = pull_good(
        owners="owners.csv",
        owner_columns={
            "id": "user_id",
            "name": "full_name",
            "email": "email",
            "active": "is_active",
            "manager_id": "boss",
            "team": "team",
        },
    )
    w = snap.owners
    assert values(w["id"]) == ["u1", "u2", "m1"]
    assert values(w["name"]) == ["Ann Lee", "Bo Chan", "m1"]
    assert values(w["active"]) == [True, False, None]
    assert values(w["manager_id"]) == ["m1", "m1", None]
    assert values(w["team"]) == ["East", "East", "East"]
    assert messages(snap) == [
        "owners.csv row 4: column user_id: duplicate owner id 'u2'",
        "owners.csv row 5: column user_id: the owner id is empty",
    ]
    assert snap.meta.warnings == [
        "owners.csv: 2 of 4 rows rejected",
        "owners.csv: 1 opportunities have an owner that is not in this file: 'u3' (1)",
    ]
    snap.validate()


def test_managers_not_added_when_switched_off() -> None:
    snap = pull_good(
        owners="owners.csv",
        managers_as_owners=False,
        owner_columns={"id": "user_id", "manager_id": "boss"},
    )
    assert values(snap.owners["id"]) == ["u1", "u2"]
    assert values(snap.owners["name"]) == ["u1", "u2"]  # no name column: shown by id


def test_currency_column_without_amount(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("id,stage,currency\nC1,Prospecting,eur\nC2,Prospecting,\n")
    opts = CsvOptions.model_validate(
        {"opportunities": "c.csv", "stage_map_default": "salesforce", "currency": "USD"}
    )
    snap = CsvConnector(opts, base_dir=tmp_path).pull()
    assert values(snap.opportunities["currency"]) == ["EUR", "USD"]
    assert snap.meta.rejected == []


# -- config validation (through the registry, as the CLI does) ---------------------------------


def _build(source: dict[str, Any]) -> None:
    cfg = parse_config({"source": {"type": "csv", **source}}, origin="audit.toml", base_dir=DATA)
    build_connector(cfg)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"opportunities": "x.csv", "colums": {}}, "audit.toml: unknown key `source.colums`"),
        ({}, "audit.toml: missing required key `source.opportunities`"),
        (
            {"opportunities": "x.csv", "columns": {"closedate": "Close"}},
            "audit.toml: key `source.columns`: unknown opportunity column "
            "'closedate' (did you mean 'close_date'?); allowed: ",
        ),
        ({"opportunities": "x.csv", "decimal": ";"}, "audit.toml: key `source.decimal`: "),
        (
            {"opportunities": "x.csv", "decimal": ",", "thousands": ","},
            "`thousands` must be one non-digit character other than the decimal separator ','",
        ),
        ({"opportunities": "x.csv", "timezone": "Mars/Base"}, "unknown time zone 'Mars/Base'"),
        (
            {"opportunities": "x.csv", "extra_columns": {"amount": "Amt"}},
            "amount is a Snapshot column; map it under `columns` instead",
        ),
        (
            {"opportunities": "x.csv", "currency": "dollars"},
            "must be a three-letter ISO 4217 code like 'USD'",
        ),
    ],
)
def test_config_errors(source: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        _build(source)
    assert expected in str(err.value)


def test_paths_relative_to_config_folder() -> None:
    cfg = parse_config(
        {
            "source": {
                "type": "csv",
                "opportunities": "deals_bad.csv",
                "stage_map_default": "salesforce",
            }
        },
        origin="audit.toml",
        base_dir=DATA,
    )
    snap = build_connector(cfg).pull()
    assert snap.meta.loaded_rows == 3
    assert snap.meta.source == "csv"


def test_name_template_with_unknown_header() -> None:
    with pytest.raises(SourceDataError) as err:
        pull_good(name_template="{Account} – {Product}")
    assert str(err.value).startswith(
        "deals_good.csv: column 'Product' (mapped by `source.name_template`) is not in the header"
    )


def test_name_template_leaves_out_missing_parts() -> None:
    snap = pull_good(name_template="{Account} – {Deal Name}")
    assert values(snap.opportunities["name"]) == [
        "Acme – Acme renewal",
        "Beta – Beta expansion",
        "Gamma – Gamma deal",
        "Delta",
    ]


def test_check_summarises_the_files() -> None:
    opts = CsvOptions.model_validate(
        {"opportunities": "deals_bad.csv", "stage_map_default": "salesforce"}
    )
    facts = CsvConnector(opts, base_dir=DATA).check()
    assert facts["opportunities"] == 3
    assert facts["rejected_rows"] == 7
    assert facts["unmapped_stages"] == {"Demo Booked": 1}
    assert facts["owners"] == 2


def test_currency_probability_and_forecast_checks() -> None:
    snap = pull(opportunities="deals_misc.csv", stage_map_default="salesforce")
    assert messages(snap) == [
        "deals_misc.csv row 2: column amount: amount '€ 5' is in EUR but column currency says USD",
        "deals_misc.csv row 3: column probability: probability '150%' is outside 0..1 (or 0..100%)",
        "deals_misc.csv row 4: column probability: cannot parse 'x' as a probability",
    ]
    o = snap.opportunities
    assert list(o["id"]) == ["M4", "M5"]
    assert values(o["currency"]) == ["EUR", "GBP"]
    assert values(o["probability"]) == [None, 0.25]
    assert values(o["forecast_category"]) == [None, "best_case"]
    assert snap.meta.warnings == [
        "deals_misc.csv: column forecast_category: forecast category 'Maybe' (1 records) is not "
        "one of omitted, pipeline, best case, commit, closed; left empty",
        "deals_misc.csv: 3 of 5 rows rejected",
    ]


def test_lookup_adds_columns_and_reports_gaps() -> None:
    snap = pull_good(
        lookups=[
            {
                "file": "accounts_lookup.csv",
                "key": "Account Name",
                "on": "account_name",
                "columns": {"industry": "Industry"},
            }
        ]
    )
    o = snap.opportunities
    assert values(o["industry"]) == ["Software", "Retail", None, None]
    assert o["industry"].dtype == "string[pyarrow]"
    assert snap.meta.warnings == [
        "accounts_lookup.csv: 1 rows repeat a key in column Account Name (e.g. 'Beta'); "
        "the first row of each key is used",
        "accounts_lookup.csv: 1 opportunities have a value in account_name that is not in "
        "column Account Name (e.g. 'Gamma'); their industry stay empty",
    ]


def test_lookup_config_errors() -> None:
    with pytest.raises(
        ConfigError,
        match=r"lookups\[0\]\.on = 'segment' is neither a Snapshot "
        r"column nor an earlier extra column",
    ):
        _build(
            {
                "opportunities": "x.csv",
                "lookups": [{"file": "a.csv", "key": "k", "on": "segment", "columns": {"x": "y"}}],
            }
        )
    with pytest.raises(ConfigError, match=r"amount is a Snapshot column; a lookup adds new "):
        _build(
            {
                "opportunities": "x.csv",
                "lookups": [
                    {"file": "a.csv", "key": "k", "on": "account_name", "columns": {"amount": "y"}}
                ],
            }
        )


def test_excel_export_with_bom_crlf_and_semicolons(tmp_path: Path) -> None:
    text = "\ufeffid;stage;amount\r\nX1;Closed Won;1.234,50\r\n\r\nX2;Closed Lost;0\r\n"
    (tmp_path / "excel.csv").write_bytes(text.encode("utf-8"))
    opts = CsvOptions.model_validate(
        {
            "opportunities": "excel.csv",
            "delimiter": ";",
            "decimal": ",",
            "stage_map_default": "salesforce",
        }
    )
    snap = CsvConnector(opts, base_dir=tmp_path).pull()
    assert list(snap.opportunities.columns[:1]) == ["id"]
    assert values(snap.opportunities["id"]) == ["X1", "X2"]
    assert values(snap.opportunities["amount"]) == [1234.5, 0.0]
    assert snap.meta.extra["blank_rows"] == {"excel.csv": 1}


def test_row_with_too_many_fields(tmp_path: Path) -> None:
    (tmp_path / "ragged.csv").write_text("id,stage\nR1,Prospecting\nR2,Prospecting,extra\n")
    opts = CsvOptions.model_validate(
        {"opportunities": "ragged.csv", "stage_map_default": "salesforce"}
    )
    with pytest.raises(SourceDataError) as err:
        CsvConnector(opts, base_dir=tmp_path).pull()
    assert str(err.value).startswith("ragged.csv: not readable as CSV: ")
    assert "Expected 2 fields in line 3, saw 3" in str(err.value)


def test_repeated_header_is_reported(tmp_path: Path) -> None:
    (tmp_path / "rep.csv").write_text("id,stage,amount,amount\nP1,Prospecting,5,7\n")
    opts = CsvOptions.model_validate(
        {"opportunities": "rep.csv", "stage_map_default": "salesforce"}
    )
    snap = CsvConnector(opts, base_dir=tmp_path).pull()
    assert values(snap.opportunities["amount"]) == [5.0]
    assert snap.meta.warnings == [
        "rep.csv: header 'amount' appears 2 times; mappings use column 3, the others are named: "
        "column 4 as 'amount.1'"
    ]
