"""`crm-audit check-config` reads a file source's data: one test per mistake a new user makes.

Each mistake exits 2 with a message that names the fix; a correct config exits 0.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.app.cli import main

DATA = Path(__file__).parent / "data"
SF_EXPORT = Path(__file__).resolve().parents[1] / "salesforce" / "data" / "export"


def check(tmp_path: Path, source: str) -> tuple[int, str]:
    cfg = tmp_path / "audit.toml"
    cfg.write_text(f"[source]\n{source}\n[history]\nenabled = false\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check-config", "--config", str(cfg)])
    return result.exit_code, result.output


def csv_source(path: Path, extra: str = "") -> str:
    return (f'type = "csv"\nopportunities = "{path.as_posix()}"\n'
            'stage_map_default = "salesforce"\n' + extra)


def sf_export(path: Path, extra: str = "") -> str:
    return f'type = "salesforce_export"\npath = "{path.as_posix()}"\n' + extra


def test_correct_config_passes_and_reports_encodings(tmp_path: Path) -> None:
    code, out = check(tmp_path, sf_export(DATA / "sf_weekly"))
    assert code == 0, out
    assert "  Opportunity.csv: cp1252 (detected, confidence 100%)" in out
    assert "  Account.csv: cp1252 (detected, confidence 100%); UTF-8 on rows [5]" in out
    assert "source salesforce_export: files read, no problem found" in out


def test_export_folder_that_does_not_exist(tmp_path: Path) -> None:
    code, out = check(tmp_path, sf_export(tmp_path / "nope"))
    assert code == 2
    assert "problem: source.path: " in out and "nope does not exist" in out


def test_undecodable_file_with_the_wrong_encoding_setting(tmp_path: Path) -> None:
    code, out = check(tmp_path, sf_export(DATA / "sf_weekly", 'encoding = "utf-8"'))
    assert code == 2
    assert "is not valid utf-8 text" in out
    assert 'set source.encoding = "cp1252" (detected with confidence 100%) or "auto"' in out


def test_invalid_stage_map_value(tmp_path: Path) -> None:
    src = csv_source(DATA / "csv_dmy" / "deals.csv",
                     'decimal = ","\nstage_map = { "Proposal/Price Quote" = "proposl" }\n')
    code, out = check(tmp_path, src)
    assert code == 2
    assert "source stage 'Proposal/Price Quote' maps to unknown common stage 'proposl'; " \
        "allowed: lead, contact," in out


def test_mistyped_loss_reason_field(tmp_path: Path) -> None:
    code, out = check(tmp_path, f'type = "salesforce_export"\npath = "{SF_EXPORT.as_posix()}"\n'
                      'loss_reason_field = "Lost_Reason__c"')
    assert code == 2
    assert "problem: Opportunity.csv: source.loss_reason_field = 'Lost_Reason__c' is not a " \
        "column; did you mean 'Loss_Reason__c'?" in out


def test_mapped_column_missing_from_the_header(tmp_path: Path) -> None:
    src = csv_source(DATA / "csv_dmy" / "deals.csv",
                     'decimal = ","\n[source.columns]\nid = "id"\nstage = "stage"\n'
                     'close_date = "closedate"\n')
    code, out = check(tmp_path, src)
    assert code == 2
    assert "deals.csv: column 'closedate' (mapped by `source.columns.close_date`) is not in the " \
        "header (did you mean 'close_date'?); headers found: id, name, stage, amount, " \
        "close_date, created_at" in out


def test_stage_values_missing_from_the_map(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("id,stage\nA,Demo Booked\nB,Demo Booked\nC,Prospecting\n")
    code, out = check(tmp_path, csv_source(tmp_path / "d.csv"))
    assert code == 2
    assert "problem: stage 'Demo Booked' (2 records) is not in the stage map; add it to " \
        'source.stage_map, e.g. "Demo Booked" = "qualification"' in out


def test_ambiguous_dates_without_a_date_order(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("id,stage,close_date\nA,Prospecting,03/04/2024\n")
    code, out = check(tmp_path, csv_source(tmp_path / "d.csv"))
    assert code == 2
    assert "could be day/month or month/day" in out and "set source.date_order" in out


def test_date_parse_rate_with_a_wrong_date_format(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("id,stage,close_date\nA,Prospecting,2024-03-04\n"
                                    "B,Prospecting,04.03.2024\nC,Prospecting,05.03.2024\n")
    code, out = check(tmp_path, csv_source(tmp_path / "d.csv", 'date_format = "%Y-%m-%d"\n'))
    assert code == 2
    assert "problem: d.csv: close_date: 2 of 3 values (67%) cannot be read as date (e.g. " \
        "'04.03.2024'); set source.date_order" in out


def test_amount_parse_rate_with_the_wrong_decimal_separator(tmp_path: Path) -> None:
    # deals.csv writes 12.500,00 (decimal comma); without decimal = "," nothing parses
    shutil.copy(DATA / "csv_dmy" / "deals.csv", tmp_path / "deals.csv")
    code, out = check(tmp_path, csv_source(tmp_path / "deals.csv"))
    assert code == 2
    assert "deals.csv: 4 of 4 rows rejected" in out
    assert "deals.csv: amount: 4 of 4 values cannot be read as amount; set source.decimal / " \
        "source.thousands to the file's number format" in out


def test_warehouse_table_read_as_an_export(tmp_path: Path) -> None:
    code, out = check(tmp_path, sf_export(DATA / "fivetran"))
    assert code == 2
    assert "did you mean 'stage_name'?" in out and 'source.header_style = "snake_case"' in out


@pytest.mark.parametrize("offline", [True])
def test_offline_does_not_read_the_data(tmp_path: Path, offline: bool) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text("[source]\n" + sf_export(tmp_path / "nope"))
    result = CliRunner().invoke(main, ["check-config", "--config", str(cfg), "--offline"])
    assert result.exit_code == 0, result.output
