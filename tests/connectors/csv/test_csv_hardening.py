"""CSV files that crashed or misled the connector (issue 17 items 8 and 9), each audited end to
end through the CLI; expected values written by hand from the file contents."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.app.cli import main
from connectors.csv_options import CsvOptions
from connectors.csv_source import CsvConnector


def audit(tmp: Path, text: str | bytes, *extra: str) -> tuple[object, Path]:
    path = tmp / "deals.csv"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    (tmp / "audit.toml").write_text(
        '[audit]\nas_of = 2024-06-01\n[source]\ntype = "csv"\nopportunities = "deals.csv"\n'
        'stage_map_default = "salesforce"\n[history]\nenabled = false\n'
        '[report]\nformats = ["csv", "json"]\n', encoding="utf-8")
    out = tmp / "out"
    result = CliRunner().invoke(main, ["run", "--config", str(tmp / "audit.toml"), "--out",
                                       str(out), *extra])
    return result, out


def test_header_that_repeats_only_after_trimming(tmp_path: Path) -> None:
    # "id" and " id" are different to pandas, the same name once trimmed
    result, out = audit(tmp_path, "id, id,name,stage,close_date\n"
                                  "D-1,X-9,Deal one,Prospecting,2024-03-31\n")
    assert result.exit_code == 0, (result.output, result.exception)
    assert ("warning: deals.csv: header 'id' appears 2 times; mappings use column 1, the others "
            "are named: column 2 as 'id.1'") in result.output
    rows = list(csv.DictReader(io.StringIO((out / "violations.csv").read_text())))
    assert [(r["opportunity_id"], r["rule_code"]) for r in rows] == [("D-1", "CD01")]


def test_repeated_header_warning_names_the_copy_that_is_used(tmp_path: Path) -> None:
    # pandas would call the second "amount" "amount.1", but that name is taken by column 4
    (tmp_path / "rep.csv").write_text(
        "id,stage,amount,amount.1,amount\nP1,Prospecting,5,6,7\n", encoding="utf-8")
    opts = CsvOptions.model_validate(
        {"opportunities": "rep.csv", "stage_map_default": "salesforce",
         "extra_columns": {"first_extra": "amount.1", "second_extra": "amount.2"}})
    snap = CsvConnector(opts, base_dir=tmp_path).pull()
    assert snap.meta.warnings == [
        "rep.csv: header 'amount' appears 2 times; mappings use column 3, the others are named: "
        "column 5 as 'amount.2'"]
    assert snap.opportunities["amount"].tolist() == [5.0]
    assert snap.opportunities["first_extra"].tolist() == ["6"]
    assert snap.opportunities["second_extra"].tolist() == ["7"]


def test_byte_order_mark_in_the_middle_of_the_file_is_not_part_of_an_id(tmp_path: Path) -> None:
    # two exports concatenated: the second one's BOM starts row 3
    data = ("\ufeffid,name,stage,close_date\nD-1,One,Prospecting,2024-03-31\n"
            "\ufeffD-2,Two,Prospecting,2024-03-31\n"
            '\ufeff"D-3","Three","Prospecting","2024-03-31"\n').encode()
    result, out = audit(tmp_path, data)
    assert result.exit_code == 0, (result.output, result.exception)
    rows = list(csv.DictReader(io.StringIO((out / "violations.csv").read_text())))
    assert [r["opportunity_id"] for r in rows] == ["D-1", "D-2", "D-3"]


@pytest.mark.parametrize("day", ["0001-01-01", "1500-06-01", "9999-12-31"])
def test_as_of_outside_the_supported_range_is_a_clear_error(tmp_path: Path, day: str) -> None:
    result, _ = audit(tmp_path, "id,name,stage\nD-1,One,Prospecting\n", "--as-of", day)
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.output.strip().splitlines()[-1] == (
        f"error: --as-of {day}: the audit date must be between 1900-01-01 and 2200-12-31")
