"""Offline Salesforce connector: ``[source] type = "salesforce_export"``.

Reads a folder or a zip of Data Loader / weekly-export CSVs with API field names as headers:
``Opportunity.csv`` (required), ``OpportunityHistory.csv``, ``User.csv``, ``Account.csv`` and
``OpportunityStage.csv`` (optional). File and header names are matched case-insensitively
(Data Loader writes ``ID``, ``STAGENAME``; the weekly export writes ``Id``, ``StageName``).
The records then go through the same normalisation as the live connector.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import field_validator

from auditor.config import check_timezone
from auditor.errors import ConfigError, SourceDataError
from auditor.snapshot import Snapshot
from connectors.base import Connector, SourceOptions
from connectors.currency import CurrencyOptions, RateTable, configured_rates, convert
from connectors.file_dates import DateOrder, decide_order
from connectors.file_text import decode_bytes
from connectors.limits import (
    FileLimits,
    check_cells,
    check_file_size,
    check_header,
    read_zip_member,
)
from connectors.local_files import contained
from connectors.salesforce.fields import (
    ACCOUNT_FIELDS,
    HISTORY_FIELDS,
    OPPORTUNITY_EXTRA_FIELDS,
    STAGE_FIELDS,
    SalesforceFieldOptions,
    opportunity_specs,
    user_specs,
)
from connectors.salesforce.normalise import PullFacts, RawOrg, build_snapshot, parse_column

FILES = {
    "opportunities": "Opportunity.csv",
    "history": "OpportunityHistory.csv",
    "users": "User.csv",
    "accounts": "Account.csv",
    "stages": "OpportunityStage.csv",
    "currency_types": "CurrencyType.csv",
    "dated_rates": "DatedConversionRate.csv",
}


class SalesforceExportOptions(SalesforceFieldOptions, CurrencyOptions, FileLimits):
    #: folder or .zip holding the export CSVs (relative to the config file)
    path: Path
    #: your org's URL, e.g. https://acme.my.salesforce.com, for record links in reports
    instance_url: str | None = None
    #: time zone of export datetimes written without one (Data Loader uses the exporting
    #: user's zone unless told otherwise; the weekly export writes UTC)
    timezone: str = "UTC"
    #: text encoding of the CSVs; "auto" detects it per file (reported in the run facts)
    encoding: str = "auto"
    #: "api": headers are API names (StageName, Loss_Reason__c), any case; "snake_case": a
    #: warehouse copy of the objects (stage_name, loss_reason_c, _fivetran_deleted)
    header_style: Literal["api", "snake_case"] = "api"
    #: order of slash dates (report exports write 3/31/24): "day_first" or "month_first";
    #: unset: decided by each file when a value has a day over 12, else an error with samples
    date_order: DateOrder | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_timezone(v, example="UTC")


class _ExportFiles:
    """The CSV files of one export, from a folder or a zip, by case-insensitive name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._files: dict[str, Any] = {}
        self.encodings: dict[str, dict[str, Any]] = {}
        self.warnings: list[str] = []
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file() and p.suffix.lower() == ".csv":
                    self._add(p.name, contained(p, path))  # no link out of the folder
        elif path.is_file() and zipfile.is_zipfile(path):
            self._zip = zipfile.ZipFile(path)
            for info in self._zip.infolist():
                if not info.is_dir() and info.filename.lower().endswith(".csv"):
                    self._add(Path(info.filename).name, info)
        elif path.exists():
            raise ConfigError(f"source.path: {path} is neither a folder nor a zip file")
        else:
            raise ConfigError(f"source.path: {path} does not exist")

    @staticmethod
    def _key(name: str) -> str:
        # a warehouse dump names the files opportunity_history.csv: match OpportunityHistory.csv
        return name.casefold().replace("_", "")

    def _add(self, name: str, ref: Any) -> None:
        key = self._key(name)
        if key in self._files:
            raise SourceDataError(f"{self.path}: more than one file named {name}")
        self._files[key] = ref

    def read(self, name: str, encoding: str, limits: FileLimits) -> pd.DataFrame | None:
        ref = self._files.get(self._key(name))
        if ref is None:
            return None
        name = ref.name if isinstance(ref, Path) else Path(ref.filename).name
        where = f"{self.path}/{name}" if isinstance(ref, Path) else f"{self.path}:{ref.filename}"
        if isinstance(ref, Path):
            check_file_size(ref, where, limits)
            data = ref.read_bytes()
        else:  # sizes and ratio checked before unpacking (a zip bomb is refused, not read)
            data = read_zip_member(self._zip, ref, where, limits)
        decoded = decode_bytes(data, label=where, setting=encoding, option="source.encoding")
        check_header(data, where, encoding=decoded.encoding, delimiter=",", limits=limits)
        self.encodings[name] = decoded.fact()
        if (mixed := decoded.warning(name)) is not None:
            self.warnings.append(mixed)
        # a byte order mark starting a later line (exports concatenated) is no part of a value;
        # before a quoted cell it would make the quotes part of it
        text = decoded.text.replace("\n\ufeff", "\n")
        try:
            # every value as text, empty = missing; normalise parses by field kind
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        except pd.errors.EmptyDataError:
            raise SourceDataError(f"{where}: the file is empty (expected a header row)") from None
        except pd.errors.ParserError as exc:
            raise SourceDataError(f"{where}: not a readable CSV file: {exc}") from None
        check_cells(frame, where, limits)
        return frame


def _fold(header: str, snake_case: bool) -> str:
    h = header.strip().casefold()
    return h.replace("_", "") if snake_case else h


def canonical_headers(
    df: pd.DataFrame, fields: list[str], snake_case: bool = False, where: str = ""
) -> pd.DataFrame:
    """Rename headers matching known API names case-insensitively to their canonical spelling
    (with ``snake_case``, also ignoring underscores: stage_name → StageName,
    loss_reason_c → Loss_Reason__c, as warehouse loaders such as Fivetran write them).

    Two headers naming the same field once trimmed and case-folded ("Id" and " ID") are an
    error naming both: which one holds the data cannot be guessed."""
    known = {_fold(f, snake_case): f for f in fields}
    renames: dict[str, str] = {}
    first: dict[str, str] = {}
    for c in df.columns:
        key = _fold(str(c), snake_case)
        if key not in known:
            continue
        if key in first:
            raise SourceDataError(
                f"{where or 'export'}: columns {first[key]!r} and {c!r} both hold the field "
                f"{known[key]}; remove one of them")
        first[key] = c
        renames[c] = known[key]
    return df.rename(columns=renames)


def looks_like_warehouse(headers: list[str]) -> bool:
    """snake_case headers (stage_name, close_date) as warehouse loaders write them."""
    lower = [h for h in headers if h == h.lower()]
    return len(lower) >= max(2, len(headers) // 2) and any("_" in h for h in lower)


def missing_field_message(field: str, headers: list[str], where: str, option: str | None = None,
                          snake_case: bool = False) -> str:
    """``field`` is not a column: say so with a "did you mean" from the headers found and, for a
    snake_case table, how to read a warehouse copy."""
    import difflib

    folded = {_fold(h, True): h for h in headers}
    near = folded.get(_fold(field, True))
    if near is None:
        close = difflib.get_close_matches(field.casefold(), [h.casefold() for h in headers], n=1)
        near = next((h for h in headers if close and h.casefold() == close[0]), None)
    what = f"{option} = {field!r}" if option else f"required field {field}"
    msg = f"{where}: {what} is not a column"
    if option is None:
        msg = f"{where}: required field {field} is missing"
    if near:
        msg += f"; did you mean {near!r}?"
    if looks_like_warehouse(headers) and not snake_case:
        msg += (" This looks like a warehouse table (snake_case headers, as Fivetran or Airbyte "
                "write them) rather than a Salesforce export: set source.header_style = "
                "\"snake_case\" to read it")
    shown = ", ".join(headers[:40]) + (", ..." if len(headers) > 40 else "")
    return msg + f" (headers found: {shown})"


class SalesforceExportConnector(Connector):
    type_name: ClassVar[str] = "salesforce_export"
    Options: ClassVar[type[SourceOptions]] = SalesforceExportOptions
    options: SalesforceExportOptions
    #: an export is a complete picture of the org on the day it was taken: every run audits
    #: exactly the files present, never rows filtered by a wall-clock stamp
    pulls_incrementally: ClassVar[bool] = False

    def pull(self, since: datetime | None = None) -> Snapshot:
        """Read the export whole: ``since`` is ignored (see :attr:`pulls_incrementally`)."""
        opts = self.options
        files = _ExportFiles(self.resolve(opts.path))
        opp_fields = [s.sf_field for s in opportunity_specs(opts)] + [
            *OPPORTUNITY_EXTRA_FIELDS, "SystemModstamp", "IsDeleted"]
        wanted = {
            "opportunities": opp_fields,
            "history": list(HISTORY_FIELDS),
            "users": [s.sf_field for s in user_specs(opts)] + ["FirstName", "LastName"],
            "accounts": list(ACCOUNT_FIELDS),
            "stages": list(STAGE_FIELDS),
            "currency_types": ["IsoCode", "ConversionRate", "IsCorporate", "IsActive"],
            "dated_rates": ["IsoCode", "ConversionRate", "StartDate", "NextStartDate"],
        }
        frames: dict[str, pd.DataFrame | None] = {}
        snake = opts.header_style == "snake_case"
        if snake:  # the loader's soft-delete flag
            wanted["opportunities"].append("_fivetran_deleted")
        raw_headers: dict[str, list[str]] = {}
        for key, name in FILES.items():
            df = files.read(name, opts.encoding, opts)
            raw_headers[key] = [] if df is None else [str(c) for c in df.columns]
            frames[key] = None if df is None else canonical_headers(
                df, wanted[key], snake, f"{files.path}/{name}")
        opps = frames["opportunities"]
        if opps is None:
            raise SourceDataError(f"{files.path}: no {FILES['opportunities']} in the export")
        if snake and "_fivetran_deleted" in opps.columns:  # the loader's soft delete
            flags = [c for c in ("IsDeleted", "_fivetran_deleted") if c in opps.columns]
            gone = pd.concat([parse_column(opps[c], "bool").fillna(False) for c in flags],
                             axis=1).any(axis=1)
            opps = opps.assign(IsDeleted=gone.map({True: "true", False: "false"}))
        headers = [str(c) for c in opps.columns]
        for required in ("Id", "StageName"):
            if required not in opps.columns:
                raise SourceDataError(missing_field_message(
                    required, raw_headers["opportunities"], FILES["opportunities"],
                    snake_case=snake))
        if opts.currency_field is None and "CurrencyIsoCode" in opps.columns:
            # a multi-currency org's export: each amount's currency is in CurrencyIsoCode
            opts = opts.model_copy(update={"currency_field": "CurrencyIsoCode"})
        missing = self._missing_fields(headers, snake)
        facts_warnings = [m["message"] for m in missing]

        deleted: list[str] = []
        if "IsDeleted" in opps.columns:  # the weekly export can include the recycle bin
            gone = parse_column(opps["IsDeleted"], "bool").fillna(False).astype(bool)
            deleted = parse_column(opps.loc[gone, "Id"], "id").dropna().tolist() if (
                "Id" in opps.columns) else []
            opps = opps[~gone]

        facts = PullFacts(
            source=self.source_name, source_type=self.type_name,
            instance_url=opts.instance_url, incremental=False,
            warnings=files.warnings + facts_warnings + ([] if opts.instance_url else [
                "source.instance_url is not set: opportunities have no record links"]),
            extra={"export_path": str(files.path), "encodings": dict(files.encodings),
                   "missing_fields": missing},
        )
        date_fields = {
            "opportunities": [sp.sf_field for sp in opportunity_specs(opts)
                              if sp.kind in ("date", "datetime", "date_as_ts")],
            "history": ["CreatedDate", "CloseDate", "PrevCloseDate"],
        }
        day_first: dict[str, bool | None] = {}
        for key, fields in date_fields.items():
            df = opps if key == "opportunities" else frames[key]
            if df is not None:
                # row numbers as an editor shows them: the header is row 1
                day_first[key] = decide_order(
                    {f: df[f].set_axis(df.index + 2) for f in fields if f in df.columns},
                    opts.date_order, label=FILES[key], option="source.date_order")
        raw = RawOrg(
            opportunities=opps, users=frames["users"], history=frames["history"],
            stages=frames["stages"], accounts=frames["accounts"], deleted_ids=deleted,
            where={k: FILES[k] for k in FILES}, row_base=2, day_first=day_first,
        )
        snap = build_snapshot(raw, opts, facts, tz=opts.timezone)
        rates = RateTable.from_salesforce(frames["currency_types"], frames["dated_rates"],
                                          opts.conversion_rates, opts.corporate_currency)
        if rates is None and opts.conversion_rates:
            rates = configured_rates(opts.corporate_currency, opts.conversion_rates)
        return convert(snap, rates, where=FILES["opportunities"])

    def _missing_fields(self, headers: list[str], snake: bool) -> list[dict[str, Any]]:
        """Configured fields the Opportunity file lacks: the column they feed stays empty, so
        the rules needing it cannot run. Each with a "did you mean" (check-config fails on
        them)."""
        o = self.options
        configured = [(f"source.{opt}", getattr(o, opt)) for opt in (
            "loss_reason_field", "next_step_due_field", "handoff_field", "pipeline_field",
            "currency_field")]
        configured += [(f"source.custom_fields.{k}", v) for k, v in o.custom_fields.items()]
        out = []
        for option, sf_field in configured:
            if sf_field and sf_field not in headers:
                out.append({"option": option, "field": sf_field, "message": missing_field_message(
                    sf_field, headers, FILES["opportunities"], option=option, snake_case=snake)
                    + "; the column it feeds stays empty"})
        return out
