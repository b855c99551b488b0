"""Salesforce exports that crashed or misled the connector (issue 17 items 8 and 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.errors import SourceDataError
from connectors.salesforce.export import SalesforceExportConnector, SalesforceExportOptions

HEADER = '"Id","Name","StageName","CloseDate","IsClosed","IsWon"\n'


def pull(tmp: Path, text: str):
    folder = tmp / "export"
    folder.mkdir(exist_ok=True)
    (folder / "Opportunity.csv").write_text(text, encoding="utf-8")
    opts = SalesforceExportOptions.model_validate(
        {"path": str(folder), "instance_url": "https://acme.my.salesforce.com"})
    return SalesforceExportConnector(opts, base_dir=tmp).pull()


def test_two_headers_for_one_field_after_trimming_is_an_error_naming_both(tmp_path: Path):
    with pytest.raises(SourceDataError) as err:
        pull(tmp_path, '"Id"," ID","Name","StageName"\n'
                       '"0068d00000OpA01AAA","x","D","Prospecting"\n')
    assert str(err.value) == (f"{tmp_path / 'export'}/Opportunity.csv: columns 'Id' and ' ID' "
                              "both hold the field Id; remove one of them")


def test_byte_order_mark_mid_file_is_not_part_of_the_id(tmp_path: Path):
    snap = pull(tmp_path, "\ufeff" + HEADER
                + '"0068d00000OpA01AAA","One","Prospecting","2024-03-31","0","0"\n'
                + '\ufeff"0068d00000OpA02AAA","Two","Prospecting","2024-03-31","0","0"\n')
    assert sorted(snap.opportunities["id"]) == ["0068d00000OpA01AAA", "0068d00000OpA02AAA"]
    assert snap.opportunities["url"].notna().all()  # both ids are valid Salesforce ids
