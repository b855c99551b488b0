"""Export connector: weekly-export folder, zip, Data Loader files → the Snapshot live gives."""

from __future__ import annotations

import shutil
import zipfile
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pytest

from auditor.errors import ConfigError, SourceDataError
from connectors.salesforce.export import SalesforceExportConnector
from tests.connectors.salesforce import expected
from tests.connectors.salesforce.fake_org import DATA, FIELD_OPTIONS, INSTANCE_URL

EXPORT = DATA / "export"


def export_connector(path: Path, **options: object) -> SalesforceExportConnector:
    opts = SalesforceExportConnector.Options.model_validate(
        {
            "path": str(path),
            "instance_url": INSTANCE_URL,
            "name": "acme",
            **FIELD_OPTIONS,
            **options,
        }
    )
    return SalesforceExportConnector(opts)


def assert_same_as_live(snap) -> None:
    pdt.assert_frame_equal(snap.opportunities, expected.opportunities())
    pdt.assert_frame_equal(snap.stage_history, expected.stage_history())
    pdt.assert_frame_equal(snap.owners, expected.owners())
    assert snap.meta.provided_fields == expected.PROVIDED
    assert snap.meta.unmapped_stages == {"Discovery Call": 1}


def test_weekly_export_folder(tmp_path) -> None:
    snap = export_connector(EXPORT).pull()
    assert_same_as_live(snap)
    m = snap.meta
    assert (m.source_type, m.api_calls, m.has_stage_history) == ("salesforce_export", 0, True)
    assert m.warnings == [expected.UNMAPPED_WARNING]
    assert m.deleted_ids == ["0068d00000OpA99AAA"]


def test_weekly_export_zip_with_a_subfolder(tmp_path) -> None:
    z = tmp_path / "WE_00D8d000000AcmE_1.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in EXPORT.glob("*.csv"):
            zf.write(p, f"WE_00D8d000000AcmE_1/{p.name}")
    assert_same_as_live(export_connector(z).pull())


def test_data_loader_style_headers_and_values(tmp_path) -> None:
    """Data Loader: upper-case headers, true/false, ISO datetimes with zone, lower-case names."""
    for p in EXPORT.glob("*.csv"):
        df = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        df.columns = [c.upper() for c in df.columns]
        for col in ("ISCLOSED", "ISWON", "ISDELETED"):
            if col in df and p.name == "Opportunity.csv":
                df[col] = df[col].map({"1": "true", "0": "false"})
        for col in ("CREATEDDATE", "LASTMODIFIEDDATE", "SYSTEMMODSTAMP"):
            if col in df:
                df[col] = df[col].str.replace(" ", "T") + ".000Z"
        df.to_csv(tmp_path / p.name.lower(), index=False)
    assert_same_as_live(export_connector(tmp_path).pull())


def test_since_is_ignored_the_export_is_read_whole() -> None:
    """#13: an export is audited as given; no row is dropped for an old modification stamp."""
    whole = export_connector(EXPORT).pull()
    snap = export_connector(EXPORT).pull(since=datetime(2024, 4, 1))
    assert snap.meta.incremental is False
    assert snap.opportunities["id"].tolist() == whole.opportunities["id"].tolist()
    assert len(snap.opportunities) == 7


def test_naive_datetimes_are_read_in_the_configured_zone() -> None:
    snap = export_connector(EXPORT, timezone="America/New_York").pull()
    first = snap.opportunities.set_index("id").loc["0068d00000OpA01AAA"]
    assert first["created_at"] == pd.Timestamp("2024-01-10T14:00Z")  # 09:00 EST
    assert first["close_date"] == pd.Timestamp("2024-06-30")  # dates carry no zone


def test_bad_rows_are_rejected_or_warned_with_their_place(tmp_path) -> None:
    shutil.copytree(EXPORT, tmp_path / "x")
    opp = tmp_path / "x" / "Opportunity.csv"
    lines = opp.read_text(encoding="utf-8-sig").splitlines()
    lines[2] = lines[2].replace('"0068d00000OpA02AAA"', '""', 1)  # line 3: no Id
    lines[4] = lines[4].replace('"18500.5"', '"18.500,5 EUR"', 1)  # line 5: bad amount
    lines.append(lines[1])  # duplicate of line 2
    opp.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    snap = export_connector(tmp_path / "x").pull()
    assert [r.to_dict() for r in snap.meta.rejected] == [
        {"where": "Opportunity.csv line 3", "reason": "no Id"},
        {"where": "Opportunity.csv line 10", "reason": "duplicate Id 0068d00000OpA01AAA"},
    ]
    assert (
        "Opportunity.csv: 1 value(s) of Amount could not be read as float (e.g. "
        "'18.500,5 EUR' in record 0068d00000OpA04AAA); treated as missing" in snap.meta.warnings
    )
    assert len(snap.opportunities) == 6


def test_out_of_range_probability_and_odd_account_file(tmp_path) -> None:
    shutil.copytree(EXPORT, tmp_path / "x")
    opp = tmp_path / "x" / "Opportunity.csv"
    opp.write_text(
        opp.read_text(encoding="utf-8-sig").replace('"90","Commit"', '"150","Commit"'),
        encoding="utf-8-sig",
    )
    (tmp_path / "x" / "Account.csv").write_text('"Id","Type"\n"0018d0000002AcmAAA","Customer"\n')
    snap = export_connector(tmp_path / "x").pull()
    row = snap.opportunities.set_index("id").loc["0068d00000OpA01AAA"]
    assert pd.isna(row["probability"]) and pd.isna(row["account_name"])
    assert snap.meta.warnings == [
        "Account.csv: no Id and Name columns; account names not read",
        expected.UNMAPPED_WARNING,
        "Opportunity.csv: 1 value(s) of Probability could not be read as a percentage from 0 "
        "to 100 (e.g. '150' in record 0068d00000OpA01AAA); treated as missing",
    ]


def test_only_opportunity_csv_is_required(tmp_path) -> None:
    shutil.copy(EXPORT / "Opportunity.csv", tmp_path)
    snap = export_connector(tmp_path, instance_url=None).pull()
    m = snap.meta
    assert m.has_stage_history is False and snap.owners.empty
    assert {"stage_entered_at", "close_date_changes", "url", "account_name"}.isdisjoint(
        m.provided_fields
    )
    assert m.warnings[0] == "source.instance_url is not set: opportunities have no record links"
    # closed / won still come from the records themselves
    assert snap.opportunities["is_won"].tolist() == [False, True, False, False, False, False, False]


def test_user_file_without_id_is_a_clear_error(tmp_path) -> None:
    shutil.copy(EXPORT / "Opportunity.csv", tmp_path)
    (tmp_path / "User.csv").write_text('"Name","Email"\n"Ann Lee","ann@acme.example"\n')
    with pytest.raises(SourceDataError, match=r"^User.csv: required field Id is missing$"):
        export_connector(tmp_path).pull()


@pytest.mark.parametrize(
    ("setup", "error", "message"),
    [
        (lambda d: None, SourceDataError, "no Opportunity.csv in the export"),
        (
            lambda d: (d / "Opportunity.csv").write_text(""),
            SourceDataError,
            "Opportunity.csv: the file is empty (expected a header row)",
        ),
        (
            lambda d: (d / "Opportunity.csv").write_text('"Id","Name"\n"0068d00000OpA01AAA","A"\n'),
            SourceDataError,
            "Opportunity.csv: required field StageName is missing",
        ),
    ],
)
def test_unusable_exports_are_clear_errors(tmp_path, setup, error, message) -> None:
    setup(tmp_path)
    with pytest.raises(error) as err:
        export_connector(tmp_path).pull()
    assert message in str(err.value)


def test_explicit_encoding_that_does_not_fit_names_byte_row_and_setting(tmp_path) -> None:
    (tmp_path / "Opportunity.csv").write_bytes(b'"Id","StageName"\n"006\xff","x"\n')
    with pytest.raises(SourceDataError) as err:
        export_connector(tmp_path, encoding="utf-8").pull()
    assert str(err.value).endswith(
        'Opportunity.csv: byte 21 (row 2) is not valid utf-8 text (bytes ff 22 2c 22); set '
        'source.encoding = "cp1252" (detected with confidence 100%) or "auto"')


def test_missing_path_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"source.path: .*nowhere does not exist"):
        export_connector(tmp_path / "nowhere").pull()


def test_live_and_export_paths_give_identical_violations(org, make_connector) -> None:
    live = make_connector().pull()
    offline = export_connector(EXPORT).pull()
    pdt.assert_frame_equal(live.opportunities, offline.opportunities)
    pdt.assert_frame_equal(live.stage_history, offline.stage_history)
    pdt.assert_frame_equal(live.owners, offline.owners)
    engine = pytest.importorskip("auditor.engine")
    from auditor.config import default_config

    cfg = default_config()
    a = engine.run_audit(live, cfg, as_of=date(2024, 5, 15))
    b = engine.run_audit(offline, cfg, as_of=date(2024, 5, 15))
    assert len(a.violations) > 0
    pdt.assert_frame_equal(a.violations, b.violations)
