"""Bugs the fuzz tests found, pinned with exact expectations."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from auditor.errors import SourceDataError
from connectors.csv_source import CsvConnector, CsvOptions
from connectors.hubspot.export import HubSpotExportConnector
from connectors.hubspot.options import HubSpotExportOptions
from connectors.hubspot.values import parse_timestamps
from connectors.salesforce.export import SalesforceExportConnector


def test_hubspot_export_dates_stay_with_their_deal_after_a_rejected_row(tmp_path: Path) -> None:
    # row 2 has no Record ID and is rejected; the stage dates of rows 3 and 4 used to shift up
    # one deal (joined by position after the rejected row was dropped)
    (tmp_path / "deals.csv").write_text(
        'Record ID,Deal Stage,Pipeline,"Date entered ""Won (Enterprise)"""\n'
        ",Won,Enterprise,2024-01-01 00:00\n"
        "11,Won,Enterprise,2024-02-02 00:00\n"
        "12,Won,Enterprise,2024-03-03 00:00\n")
    opts = HubSpotExportOptions(name="x", path=tmp_path / "deals.csv",
                                stage_map={"Won": "closed_won"})
    snap = HubSpotExportConnector(opts).pull()
    assert [(r.where, r.reason) for r in snap.meta.rejected] == [("deals.csv row 2",
                                                                   "no Record ID")]
    got = snap.opportunities.set_index("id")["stage_entered_at"]
    assert got.to_dict() == {"11": pd.Timestamp("2024-02-02", tz="UTC"),
                             "12": pd.Timestamp("2024-03-03", tz="UTC")}


@pytest.mark.parametrize("rows,rejected", [("", []), (",,\n", [("deals.csv row 2",
                                                                   "no Record ID")])])
def test_hubspot_export_with_no_usable_rows(tmp_path: Path, rows, rejected) -> None:
    (tmp_path / "deals.csv").write_text(
        'Record ID,Deal Stage,"Date entered ""Won (E)"""\n' + rows)
    snap = HubSpotExportConnector(HubSpotExportOptions(name="x", path=tmp_path / "deals.csv")
                                  ).pull()
    assert len(snap.opportunities) == 0
    assert [(r.where, r.reason) for r in snap.meta.rejected] == rejected


def test_hubspot_export_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "deals.csv").write_bytes(b"")
    with pytest.raises(SourceDataError, match=r"deals.csv is empty \(expected a header row\)"):
        HubSpotExportConnector(HubSpotExportOptions(name="x", path=tmp_path / "deals.csv")
                               ).pull()


def test_hubspot_epoch_ms_past_2262_is_unreadable_not_a_crash() -> None:
    out, bad = parse_timestamps(pd.Series(["99999999999999999999", "1704067200000"]), "UTC")
    assert out.tolist() == [pd.NaT, pd.Timestamp("2024-01-01", tz="UTC")]
    assert bad.tolist() == [True, False]


def test_csv_header_cell_over_the_csv_field_limit(tmp_path: Path) -> None:
    path = tmp_path / "opportunities.csv"
    path.write_text("id,stage," + "h" * 140_000 + "\n1,Prospecting,x\n")
    snap = CsvConnector(CsvOptions(name="x", opportunities=path,
                                   stage_map_default="salesforce")).pull()
    assert snap.opportunities["id"].tolist() == ["1"]


def test_utf16_told_wrong_is_a_clear_error_and_without_bom_reads(tmp_path: Path) -> None:
    data = "id,stage\n1,Prospecting\n".encode("utf-16")
    path = tmp_path / "opportunities.csv"
    path.write_bytes(data)
    opts = CsvOptions(name="x", opportunities=path, stage_map_default="salesforce",
                      encoding="utf-8-sig")
    # the message names byte, row and the setting; the byte order mark says UTF-16
    with pytest.raises(SourceDataError, match=r"opportunities.csv: byte 0 \(row 1\) is not "
                       r'valid utf-8-sig text .*set source.encoding = "utf-16"'):
        CsvConnector(opts).pull()
    (tmp_path / "Opportunity.csv").write_bytes(data)
    sf = SalesforceExportConnector.Options.model_validate(
        {"name": "x", "path": str(tmp_path), "encoding": "utf-8-sig"})
    with pytest.raises(SourceDataError, match=r"Opportunity.csv: byte 0 \(row 1\) is not "
                                              r"valid utf-8-sig text"):
        SalesforceExportConnector(sf).pull()
    # unset, the encoding is detected (the byte order mark)
    auto = CsvOptions(name="x", opportunities=path, stage_map_default="salesforce")
    assert CsvConnector(auto).pull().opportunities["id"].tolist() == ["1"]
    # told "utf-16" without a byte order mark: read little-endian, as Python does
    path.write_bytes(data[2:])
    told = CsvOptions(name="x", opportunities=path, stage_map_default="salesforce",
                      encoding="utf-16")
    assert CsvConnector(told).pull().opportunities["id"].tolist() == ["1"]


def test_hubspot_probability_outside_0_1_is_a_warning_not_a_schema_error(tmp_path: Path) -> None:
    (tmp_path / "deals.csv").write_text("Record ID,Deal Stage,Deal probability\n"
                                        "1,Won,40%\n2,Won,99999999999999999999\n3,Won,-0.5\n")
    snap = HubSpotExportConnector(HubSpotExportOptions(name="x", path=tmp_path / "deals.csv")
                                  ).pull()
    assert snap.opportunities["probability"].tolist() == [0.4, pd.NA, pd.NA]
    assert ("2 deal(s) have a `hs_deal_stage_probability` value that is not a valid probability "
            "from 0 to 1 (e.g. deal 2: '99999999999999999999'); treated as missing"
            ) in snap.meta.warnings


def test_salesforce_export_without_owner_id_but_with_users(tmp_path: Path) -> None:
    # an export lacking OwnerId used to crash (KeyError) when User.csv or Owner.Name was there
    (tmp_path / "Opportunity.csv").write_text("Id,StageName,Owner.Name\n006A,Prospecting,Ann\n")
    (tmp_path / "User.csv").write_text("Id,Name\n005A,Ann Lee\n")
    opts = SalesforceExportConnector.Options.model_validate({"name": "x", "path": str(tmp_path)})
    snap = SalesforceExportConnector(opts).pull()
    assert snap.opportunities["id"].tolist() == ["006A"]
    assert snap.opportunities["owner_id"].isna().all()
    assert snap.owners["id"].tolist() == ["005A"]
