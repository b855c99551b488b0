"""Fuzzed inputs for every parser: arbitrary text, encodings, dates, amounts, huge fields,
missing columns. Each example either succeeds (every rejected row carries where and why) or
raises an AuditorError whose message names the file; any other exception fails the test.

A short budget per parser in the default test run (FUZZ_EXAMPLES, default 25) keeps the suite
fast; the long fuzzing keeps its 500 examples per parser in a separate command (README):

    FUZZ_EXAMPLES=500 CI=true pytest -q -p no:cacheprovider -n 2 --dist loadfile -m "slow or fuzz"

(hypothesis, no deadline); the counts of each outcome go into docs/fault-matrix.md through
matrix.record (scripts/fault_matrix.py runs the long budget).
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from auditor.errors import AuditorError
from auditor.snapshot import Snapshot
from connectors import csv_parsing
from connectors.csv_source import CsvConnector, CsvOptions
from connectors.hubspot import values as hs_values
from connectors.hubspot.export import HubSpotExportConnector
from connectors.hubspot.options import HubSpotExportOptions
from connectors.salesforce.export import SalesforceExportConnector
from connectors.salesforce.normalise import parse_column
from tests.security.matrix import record

#: examples per parser in this run; the long run (and docs/fault-matrix.md) uses LONG_EXAMPLES
LONG_EXAMPLES = 500
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
# In CI (CI=true) the examples are derandomized, so a submission is not blocked by a newly
# drawn input; locally each run explores new inputs (and any find becomes an @example).
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=os.environ.get("CI") == "true",
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture,
                                       HealthCheck.filter_too_much])
SECTION = "4. Fuzzed inputs (hypothesis)"
# test_record_fuzz_families reads the tallies the tests before it left: under pytest-xdist the
# commands use --dist loadfile, so one worker runs this whole module in order
pytestmark = pytest.mark.fuzz

#: values that have broken parsers elsewhere: edge dates, numbers, separators, markup, controls
NASTY = [
    "", " ", "NA", "null", "None", "nan", "-", "0", "-0", "1e308", "-1e309", "9" * 40,
    "0x1F", "1_000", "∞", "½", "١٢٣", "2024-03-31", "2024-02-30", "2024-13-01", "31/03/2024",
    "03/04/2017", "12/31/99 10:00 PM", "15.04.2024", "2024-03-31T25:00:00Z",
    "2024-03-10T02:30:00", "9999-12-31", "0001-01-01", "1677-09-21", "2262-04-12",
    "10000-01-01", "99999999999999999999", "253402300800000", "-62135596800001",
    "$1,200.50", "1.200,50 €", "(100)", "--5", "USD 12 EUR", "1,2,3", "1'000'000.5",
    "\u00a0 12", "true", "YES", "Ja", "\x00", "\ufeff", "\u202e", "=cmd|' /C calc'!A0",
    "<script>alert(1)</script>", "'", '"', '""', "\r\n", "a\nb", ",", ";", "\t", "%",
    "120%", "-5%", "Pipeline", "Best Case", "Closed Won", "Prospecting",
]
cell = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=12),
    st.text(alphabet="0123456789.,-/: TZ+$€%()", max_size=22),
)
HUGE = st.sampled_from(["x" * 140_000, "9" * 400, "é" * 70_000])


def _series(values: list[str | None]) -> pd.Series:
    return pd.Series(values, dtype="string").str.strip().replace("", pd.NA)


class Tally:
    """Counts of outcomes for one fuzz family; recorded when the test passed."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def done(self, family: str, target: str, inputs: str) -> None:
        n = sum(self.counts.values())
        assert n >= EXAMPLES  # hypothesis really ran the examples asked for
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()))
        record(SECTION, family, target, inputs,
               "no traceback: success (rejected rows with reasons) or a clear AuditorError",
               f"{n} examples, no traceback ({shown})")


def _check_column(tally: Tally, parsed: pd.Series, bad: pd.Series, text: pd.Series) -> None:
    assert len(parsed) == len(text) and parsed.index.equals(text.index)
    assert not (bad & text.isna()).any()            # only present cells can fail
    assert not (bad & parsed.notna()).any()          # a failed cell has no value
    tally.counts["unreadable cells flagged" if bad.any() else "all cells read"] += 1


# -- csv_parsing normalizers ----------------------------------------------------------------
TALLIES: dict[str, Tally] = {}


def tally(name: str) -> Tally:
    return TALLIES.setdefault(name, Tally())


@FUZZ
@given(st.lists(cell, max_size=8), st.sampled_from([None, "%d/%m/%Y", "%Y-%m-%d %H:%M%z"]),
       st.sampled_from([None, True, False]), st.booleans(),
       st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]))
@example(["2024-03-10 02:30"], None, None, True, "America/New_York")  # a wall time that never was
@example(["10000-01-01", "0001-01-01"], None, None, False, "UTC")
def test_csv_parse_dates(values, fmt, dayfirst, aware, tz) -> None:
    t = tally("fuzz-csv-dates")
    s = _series(values)
    try:
        out, bad = csv_parsing.parse_dates(s, fmt=fmt, dayfirst=dayfirst, tz=tz, aware=aware)
    except csv_parsing.DateOrderUnknown:  # the connector turns it into a SourceDataError
        assert dayfirst is None and fmt is None
        t.counts["day/month order asked for"] += 1
        return
    assert str(out.dtype) == ("datetime64[us, UTC]" if aware else "datetime64[us]")
    _check_column(t, out, bad, s)


@FUZZ
@given(st.lists(cell, max_size=8), st.sampled_from([(".", None), (",", None), (".", "'"),
                                                     (",", " ")]))
@example(["9" * 400, "1e308", "-1e309"], (".", None))
def test_csv_parse_amounts(values, seps) -> None:
    s = _series(values)
    value, code, bad = csv_parsing.parse_amounts(s, decimal=seps[0], thousands=seps[1])
    assert len(code) == len(s)
    _check_column(tally("fuzz-csv-amounts"), value, bad, s)


@FUZZ
@given(st.lists(cell, max_size=8))
def test_csv_parse_bools_and_numbers(values) -> None:
    s = _series(values)
    out, bad = csv_parsing.parse_bools(s, true_values=csv_parsing.DEFAULT_TRUE,
                                       false_values=csv_parsing.DEFAULT_FALSE)
    _check_column(tally("fuzz-csv-bools-numbers"), out, bad, s)
    for decimal in (".", ","):
        num, bad = csv_parsing.parse_numbers(s, decimal=decimal)
        assert len(num) == len(s) and not (bad & num.notna()).any()


# -- Salesforce parse_column, HubSpot converters ------------------------------------------------
raw_value = st.one_of(cell, st.none(), st.booleans(), st.integers(), st.floats())


@FUZZ
@given(st.lists(raw_value, max_size=8),
       st.sampled_from(["id", "text", "bool", "float", "percent", "date", "datetime",
                        "date_as_ts", "forecast"]),
       st.sampled_from(["UTC", "America/New_York", "Australia/Lord_Howe"]))
@example(["10000-01-01T00:00:00", "99999-01-01"], "datetime", "UTC")
@example(["2024-03-10T02:30:00"], "datetime", "America/New_York")
def test_salesforce_parse_column(values, kind, tz) -> None:
    raw = pd.Series(values, dtype=object)
    out = parse_column(raw, kind, tz=tz)
    assert len(out) == len(raw)
    tally("fuzz-salesforce-parse-column").counts[f"kind {kind}"] += 1


@FUZZ
@given(st.lists(st.one_of(cell, st.none()), max_size=8),
       st.sampled_from(["str", "float", "bool", "ts", "date", "forecast"]),
       st.sampled_from(["UTC", "America/New_York"]))
@example(["99999999999999999999"], "ts", "UTC")         # epoch ms far past the year 2262
@example(["-62135596800001"], "date", "UTC")
@example(["2024-03-10T02:30:00"], "date", "America/New_York")
def test_hubspot_convert(values, kind, tz) -> None:
    s = pd.Series(values, dtype=object)
    out, bad = hs_values.convert(s, kind, portal_tz=tz, naive_tz=tz)
    assert len(out) == len(s) and not (bad & out.notna()).any()
    tally("fuzz-hubspot-values").counts[f"kind {kind}"] += 1


# -- whole files ----------------------------------------------------------------------------
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]
CSV_HEADERS = ["id", "name", "stage", "amount", "currency", "probability", "close_date",
               "created_at", "owner_id", "is_closed", "forecast_category", "close_date_changes"]


@st.composite
def csv_file(draw: st.DrawFn, headers: list[str], required: list[str]) -> tuple[bytes, str]:
    """(file bytes, the encoding the connector is told): structured rows, junk, or raw bytes."""
    form = draw(st.sampled_from(["rows"] * 6 + ["junk", "bytes"]))
    if form == "bytes":
        return draw(st.binary(max_size=300)), draw(st.sampled_from(ENCODINGS))
    if form == "junk":
        text = draw(st.text(max_size=300))
    else:
        cols = draw(st.lists(st.sampled_from(headers), min_size=0, max_size=len(headers),
                             unique=True))
        if draw(st.integers(0, 4)):  # usually a usable file: the required columns are there
            cols = list(dict.fromkeys(required + cols))
        cols += draw(st.lists(st.text(max_size=8), max_size=2))
        rows = draw(st.lists(st.lists(cell, min_size=len(cols), max_size=len(cols)),
                             max_size=6))
        if draw(st.integers(0, 9)) == 0:  # now and then one huge field, header or cell
            table = [cols, *rows]
            r = draw(st.integers(0, len(table) - 1))
            if table[r]:
                table[r][draw(st.integers(0, len(table[r]) - 1))] = draw(HUGE)
        if rows and draw(st.booleans()):
            rows[-1] = rows[-1][: draw(st.integers(0, len(cols)))]  # a short (ragged) row
        buf = io.StringIO()
        csv.writer(buf, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows(
            [cols, *rows])
        text = buf.getvalue()
    enc = draw(st.sampled_from(ENCODINGS))
    data = text.encode(enc, errors="replace")
    told = enc if draw(st.integers(0, 5)) else draw(st.sampled_from(ENCODINGS))
    return data, told


def _run(t: Tally, pull: Callable[[], Snapshot], names: list[str]) -> None:
    try:
        snap = pull()
    except AuditorError as exc:
        msg = str(exc)
        assert msg.strip()
        assert any(n in msg for n in names), msg  # the message names the file
        t.counts[type(exc).__name__] += 1
        return
    assert all(r.where.strip() and r.reason.strip() for r in snap.meta.rejected)
    t.counts["success with rejected rows" if snap.meta.rejected else "success"] += 1


@pytest.fixture(scope="module")
def workdir() -> Path:
    d = Path(tempfile.mkdtemp(prefix="fuzz-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


CSV_HISTORY_HEADERS = ["opportunity_id", "stage", "entered_at"]
CSV_OWNER_HEADERS = ["id", "name", "email", "active", "manager_id", "team"]


@FUZZ
@given(csv_file(CSV_HEADERS, ["id", "stage"]), st.sampled_from([None, True]),
       st.one_of(st.none(), csv_file(CSV_HISTORY_HEADERS, CSV_HISTORY_HEADERS)),
       st.one_of(st.none(), csv_file(CSV_OWNER_HEADERS, ["id"])))
@example((b"id,stage\n" + b"x" * 140_000 + b",Prospecting\n", "utf-8"), None, None, None)
@example((("id,stage," + "h" * 140_000 + "\n1,Prospecting,x\n").encode(), "utf-8"),
         None, None, None)
@example(("id,stage\n1,Prospecting\n".encode("utf-16"), "utf-8-sig"), None, None, None)
@example(("\ufeffid;stage\n1;Closed Won\n".encode(), "utf-8"), None, None, None)
@example((b"id,stage,owner_id\n1,Prospecting,u1\n2,Closed Won,u2\n", "utf-8"), None,
         (b"opportunity_id,stage,entered_at\n1,Prospecting,2024-01-01\n1,,x\n3,a,\n", "utf-8"),
         (b"id,active,manager_id,team\nu1,maybe,m1,A\nu1,yes,m1,B\n,no,,\n", "utf-8"))
# history whose stages are all unknown: stage entry dates lost their time zone (TypeError)
@example((b"id,stage,\n0,-,\n", "utf-8"), None,
         (b"opportunity_id,stage,entered_at,\n0,-,15.04.2024,\n", "utf-8"), None)
def test_csv_connector_whole_file(workdir, file, dayfirst, history, owners) -> None:
    data, encoding = file
    path = workdir / "opportunities.csv"
    path.write_bytes(data)
    extra: dict[str, Path] = {}
    for key, name, content in (("stage_history", "history.csv", history),
                               ("owners", "owners.csv", owners)):
        if content is not None:
            (workdir / name).write_bytes(content[0])
            extra[key] = workdir / name
    opts = CsvOptions(name="fuzz", opportunities=path, stage_map_default="salesforce",
                      encoding=encoding, dayfirst=dayfirst, **extra)
    _run(tally("fuzz-csv-connector-file"), CsvConnector(opts).pull,
         ["opportunities.csv", "history.csv", "owners.csv"])


SF_HEADERS = ["Id", "Name", "StageName", "Amount", "Probability", "CloseDate", "CreatedDate",
              "IsClosed", "IsWon", "OwnerId", "ForecastCategoryName", "IsDeleted",
              "SystemModstamp", "LastActivityDate", "Account.Name"]


SF_HISTORY_HEADERS = ["Id", "OpportunityId", "StageName", "CloseDate", "PrevCloseDate",
                      "CreatedDate"]
SF_USER_HEADERS = ["Id", "Name", "Email", "IsActive", "ManagerId"]
OPP_ROWS = b"Id,StageName,CloseDate\n006A,Prospecting,2024-03-31\n006B,Closed Won,2024-04-01\n"


@FUZZ
@given(csv_file(SF_HEADERS, ["Id", "StageName"]),
       st.one_of(st.none(), csv_file(SF_HISTORY_HEADERS, ["OpportunityId", "StageName",
                                                          "CreatedDate"])),
       st.one_of(st.none(), csv_file(SF_USER_HEADERS, ["Id"])))
@example((b"Id,StageName\n" + b"0" * 140_000 + b",Prospecting\n", "utf-8"), None, None)
@example(("Id,StageName\n006A,Prospecting\n".encode("utf-16"), "utf-8-sig"), None, None)
@example((OPP_ROWS, "utf-8"), (b"OpportunityId,StageName,CreatedDate\n006A,x,10000-01-01\n"
                               b"006A,,2024-02-30T00:00:00Z\n006B,y,\n", "utf-8"), None)
@example((b"Id,StageName,Owner.Name\n006A,Prospecting,Ann\n", "utf-8"), None,
         (b"Id\n005A\n", "utf-8"))  # no OwnerId column: owners were joined on it
def test_salesforce_export_reader(workdir, file, history, users) -> None:
    data, encoding = file
    folder = workdir / "sf-export"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "Opportunity.csv").write_bytes(data)
    if history is not None:  # the other files are read with the Opportunity file's encoding
        (folder / "OpportunityHistory.csv").write_bytes(history[0])
    if users is not None:
        (folder / "User.csv").write_bytes(users[0])
    opts = SalesforceExportConnector.Options.model_validate(
        {"name": "fuzz", "path": str(folder), "encoding": encoding})
    _run(tally("fuzz-salesforce-export"), SalesforceExportConnector(opts).pull,
         ["Opportunity.csv", "OpportunityHistory.csv", "User.csv"])


HS_HEADERS = ["Record ID", "Deal Name", "Deal Stage", "Pipeline", "Amount", "Close Date",
              "Deal owner", "Create Date", "Last Modified Date", "Deal probability",
              "Is Closed", 'Date entered "Won (Enterprise)"', "Forecast category"]


HS_OWNER_HEADERS = ["id", "name", "email", "active", "team"]


@FUZZ
@given(csv_file(HS_HEADERS, ["Record ID", "Deal Stage"]),
       st.one_of(st.none(), csv_file(HS_OWNER_HEADERS, ["id"])))
@example((b"", "utf-8"), None)                                             # an empty file
@example((b"Record ID,Deal Stage,Date entered \"Won (Enterprise)\"\n", "utf-8"), None)  # no rows
@example(("Record ID,Deal Stage\n1,Won\n".encode("utf-16"), "utf-8-sig"), None)
@example((b"Record ID,Deal Stage,Close Date\n1,Won,99999999999999999999\n", "utf-8"), None)
@example((b'Record ID,Deal Stage,"Date entered ""Won (Enterprise)"""\n,,\n', "utf-8"), None)
@example((b"Record ID,Deal Stage,Deal owner\n1,Won,Ann Lee\n", "utf-8"), (b"", "utf-8"))
@example((b"Record ID,Deal Stage,Deal owner\n1,Won,Ann Lee\n", "utf-8"),
         ("id,name\n1,Ann\n".encode("utf-16"), "utf-8"))
def test_hubspot_export_reader(workdir, file, owners) -> None:
    data, encoding = file
    path = workdir / "deals-export.csv"
    path.write_bytes(data)
    extra: dict[str, Path] = {}
    if owners is not None:  # the owners file is read as UTF-8
        (workdir / "owners.csv").write_bytes(owners[0])
        extra["owners_path"] = workdir / "owners.csv"
    opts = HubSpotExportOptions(name="fuzz", path=path, encoding=encoding, **extra)
    _run(tally("fuzz-hubspot-export"), HubSpotExportConnector(opts).pull,
         ["deals-export.csv", "owners.csv"])


FAMILIES = {
    "fuzz-csv-dates": ("CSV connector", "parse_dates: arbitrary text, ISO / slash / dotted "
                       "dates, formats with %z, DST gaps, years 1 and 10000, 3 time zones"),
    "fuzz-csv-amounts": ("CSV connector", "parse_amounts: arbitrary text, symbols and codes, "
                         "parentheses, signs, grouping with , . ' space, 400-digit numbers"),
    "fuzz-csv-bools-numbers": ("CSV connector", "parse_bools / parse_numbers: arbitrary text"),
    "fuzz-salesforce-parse-column": ("Salesforce", "parse_column, every kind: text, numbers, "
                                     "booleans, floats, None, far-future dates, DST gaps"),
    "fuzz-hubspot-values": ("HubSpot", "values.convert, every kind: text, epoch ms past the "
                            "year 2262 and before year 1, DST gaps"),
    "fuzz-csv-connector-file": ("CSV connector", "whole opportunities file (and now and then a "
                                "stage-history and an owners file): random headers (missing "
                                "columns), cells, 140 kB fields, ragged rows, raw bytes; UTF-8, "
                                "UTF-8 BOM, UTF-16, Latin-1, cp1252, told right or wrong"),
    "fuzz-salesforce-export": ("Salesforce export", "Opportunity.csv as above, with a fuzzed "
                               "OpportunityHistory.csv and User.csv now and then"),
    "fuzz-hubspot-export": ("HubSpot UI export", "deals export CSV as above, with a fuzzed "
                            "owners file now and then"),
}


def test_record_fuzz_families() -> None:
    """Runs last in this module: every family ran its examples; note them for the doc."""
    assert set(TALLIES) == set(FAMILIES)
    for name, (target, inputs) in FAMILIES.items():
        TALLIES[name].done(name, target, inputs)
