"""CSV formula injection (issue 17 item 2) and NUL bytes in CSV output (item 9).

A hostile CSV export (tests/security/data/hostile/) is audited through the CLI with owner
digests, a team roll-up and CSV attachments written as .eml (dry run). Every CSV the run
wrote — violations.csv and each e-mail attachment — is opened with the csv module and every
cell checked: none may start with =, +, -, @, tab or CR (a spreadsheet would run it) unless it
is a number in the amount column, and none may hold a NUL byte.
"""

from __future__ import annotations

import csv
import email
import io
from email import policy
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from auditor.app.cli import main
from reports.machine import violations_csv_bytes
from tests.security.matrix import HARDENING, record

DATA = Path(__file__).parent / "data" / "hostile"
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
SCENARIOS = ["csv-formula-cells", "csv-nul-byte"]


def write_config(tmp: Path) -> Path:
    cfg = tmp / "audit.toml"
    cfg.write_text(f"""
[audit]
as_of = 2024-06-01
[source]
type = "csv"
name = "hostile"
stage_map_default = "salesforce"
opportunities = "{DATA / 'deals.csv'}"
owners = "{DATA / 'owners.csv'}"
[report]
formats = ["html", "md", "txt", "csv", "json"]
digests = true
[history]
enabled = false
[delivery]
managers = ["boss@example.com"]
owner_digests = true
attach_csv = true
teams = {{ East = ["east-lead@example.com"] }}
""", encoding="utf-8")
    return cfg


def csv_files(out: Path) -> dict[str, bytes]:
    """Every CSV the run wrote: violations.csv and each attachment of each .eml."""
    found = {"violations.csv": (out / "violations.csv").read_bytes()}
    for eml in sorted((out / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
        for part in msg.iter_attachments():
            found[f"{eml.name}:{part.get_filename()}"] = part.get_payload(decode=True)
    return found


def bad_cells(data: bytes) -> list[str]:
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))
    out = []
    for n, row in enumerate(rows, 2):
        for col, cell in row.items():
            if "\0" in cell:
                out.append(f"row {n} {col}: NUL byte")
            if cell.startswith(DANGEROUS):
                if col == "amount":
                    float(cell)  # a negative amount stays a number
                    continue
                out.append(f"row {n} {col}: {cell!r}")
    return out


def test_no_formula_and_no_nul_in_any_csv_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", "--config", str(write_config(tmp_path)),
                                       "--out", str(out), "--dry-run"])
    assert result.exit_code == 0, (result.output, result.exception)
    files = csv_files(out)
    assert len(files) >= 4  # violations.csv, the manager's, owners' and the team's attachments
    for name, data in files.items():
        assert bad_cells(data) == [], name
    rows = list(csv.DictReader(io.StringIO(files["violations.csv"].decode(), newline="")))
    by_id = {}
    for r in rows:
        by_id.setdefault(r["opportunity_id"], r)
    # the neutralised cells keep their text behind the quote, exactly
    assert by_id["H-1"]["opportunity_name"] == "'=HYPERLINK(\"http://x.example\",\"click\")"
    assert by_id["H-2"]["opportunity_name"] == "'+SUM(1+1)*cmd|' /C calc'!A0"
    assert by_id["H-2"]["account_name"] == "'@evil"
    assert by_id["H-3"]["opportunity_name"] == "'-2+3"
    assert by_id["'=cmd"]["account_name"] == "'=1+2"
    assert by_id["H-5"]["owner_id"] == "'@u3"
    assert by_id["H-4"]["opportunity_name"] == "nulbyte deal"
    assert by_id["H-4"]["account_name"] == "BetaCorp"
    # negative amounts are still numbers, and plain cells are untouched
    assert (by_id["H-2"]["amount"], by_id["H-3"]["amount"]) == ("-5000", "-12.5")
    assert by_id["'=cmd"]["opportunity_name"] == "Plain deal"
    record(HARDENING, "csv-formula-cells", "CSV outputs",
           "deal / account / owner / id cells starting with = + - @ (e.g. =HYPERLINK(...))",
           "every cell of every CSV written starts with none of = + - @ tab CR",
           f"exit 0; {len(files)} CSV files ({', '.join(sorted(files))[:120]}…), "
           f"{sum(len(bad_cells(d)) for d in files.values())} dangerous cells; formulas "
           "prefixed with ', negative amounts kept as numbers")


def test_every_dangerous_start_is_neutralised_and_nul_removed() -> None:
    names = ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "a\0b", "plain", "- ok", None]
    frame = pd.DataFrame({
        "rule_code": "CD01", "rule_name": "n", "severity": "error",
        "opportunity_id": [f"O{i}" for i in range(len(names))], "opportunity_name": names,
        "owner_id": "u", "account_name": "a", "stage": "proposal",
        "amount": [-1.5] * len(names), "url": None, "message": "-m", "fingerprint": "f",
    })
    rows = list(csv.DictReader(io.StringIO(violations_csv_bytes(frame).decode(), newline="")))
    assert [r["opportunity_name"] for r in rows] == [
        "'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "ab", "plain", "'- ok", ""]
    assert {r["message"] for r in rows} == {"'-m"}
    assert {r["amount"] for r in rows} == {"-1.5"}
    record(HARDENING, "csv-nul-byte", "CSV outputs",
           "a NUL byte in a deal / account name", "no NUL byte in any CSV cell",
           "removed: 'a\\0b' written as 'ab'; each of = + - @ tab CR prefixed with '")
