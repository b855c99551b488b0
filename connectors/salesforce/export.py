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
from typing import Any, ClassVar

import pandas as pd
from pydantic import field_validator

from auditor.config import check_timezone
from auditor.errors import ConfigError, SourceDataError
from auditor.snapshot import Snapshot
from connectors.base import Connector, SourceOptions
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
from connectors.salesforce.normalize import PullFacts, RawOrg, build_snapshot, parse_column

FILES = {
    "opportunities": "Opportunity.csv",
    "history": "OpportunityHistory.csv",
    "users": "User.csv",
    "accounts": "Account.csv",
    "stages": "OpportunityStage.csv",
}


class SalesforceExportOptions(SalesforceFieldOptions, FileLimits):
    #: folder or .zip holding the export CSVs (relative to the config file)
    path: Path
    #: your org's URL, e.g. https://acme.my.salesforce.com, for record links in reports
    instance_url: str | None = None
    #: time zone of export datetimes written without one (Data Loader uses the exporting
    #: user's zone unless told otherwise; the weekly export writes UTC)
    timezone: str = "UTC"
    encoding: str = "utf-8-sig"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_timezone(v, example="UTC")


class _ExportFiles:
    """The CSV files of one export, from a folder or a zip, by case-insensitive name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._files: dict[str, Any] = {}
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

    def _add(self, name: str, ref: Any) -> None:
        key = name.casefold()
        if key in self._files:
            raise SourceDataError(f"{self.path}: more than one file named {name}")
        self._files[key] = ref

    def read(self, name: str, encoding: str, limits: FileLimits) -> pd.DataFrame | None:
        ref = self._files.get(name.casefold())
        if ref is None:
            return None
        where = f"{self.path}/{name}" if isinstance(ref, Path) else f"{self.path}:{ref.filename}"
        if isinstance(ref, Path):
            check_file_size(ref, where, limits)
            data = ref.read_bytes()
        else:  # sizes and ratio checked before unpacking (a zip bomb is refused, not read)
            data = read_zip_member(self._zip, ref, where, limits)
        check_header(data, where, encoding=encoding, delimiter=",", limits=limits)
        if encoding.lower().replace("_", "-").startswith(("utf-8", "utf8")):
            # a byte order mark starting a later line (exports concatenated) is no part of a
            # value; before a quoted cell it would make the quotes part of it
            data = data.replace(b"\n\xef\xbb\xbf", b"\n")
        try:
            # every value as text, empty = missing; normalize parses by field kind
            frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False,
                                encoding=encoding)
            check_cells(frame, where, limits)
            return frame
        except UnicodeError:  # a decode error, or a UTF-16 file without its byte order mark
            raise SourceDataError(f"{where}: not {encoding} text") from None
        except LookupError:
            raise SourceDataError(
                f"{where}: unknown encoding {encoding!r} (source.encoding)") from None
        except pd.errors.EmptyDataError:
            raise SourceDataError(f"{where}: the file is empty (expected a header row)") from None
        except pd.errors.ParserError as exc:
            raise SourceDataError(f"{where}: not a readable CSV file: {exc}") from None


def canonical_headers(df: pd.DataFrame, fields: list[str], where: str = "") -> pd.DataFrame:
    """Rename headers matching known API names case-insensitively to their canonical spelling.

    Two headers naming the same field once trimmed and case-folded ("Id" and " ID") are an
    error naming both: which one holds the data cannot be guessed."""
    known = {f.casefold(): f for f in fields}
    renames: dict[str, str] = {}
    first: dict[str, str] = {}
    for c in df.columns:
        key = str(c).strip().casefold()
        if key not in known:
            continue
        if key in first:
            raise SourceDataError(
                f"{where or 'export'}: columns {first[key]!r} and {c!r} both hold the field "
                f"{known[key]}; remove one of them")
        first[key] = c
        renames[c] = known[key]
    return df.rename(columns=renames)


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
            "users": [s.sf_field for s in user_specs(opts)],
            "accounts": list(ACCOUNT_FIELDS),
            "stages": list(STAGE_FIELDS),
        }
        frames: dict[str, pd.DataFrame | None] = {}
        for key, name in FILES.items():
            df = files.read(name, opts.encoding, opts)
            frames[key] = None if df is None else canonical_headers(
                df, wanted[key], f"{files.path}/{name}")
        opps = frames["opportunities"]
        if opps is None:
            raise SourceDataError(f"{files.path}: no {FILES['opportunities']} in the export")

        deleted: list[str] = []
        if "IsDeleted" in opps.columns:  # the weekly export can include the recycle bin
            gone = parse_column(opps["IsDeleted"], "bool").fillna(False).astype(bool)
            deleted = parse_column(opps.loc[gone, "Id"], "id").dropna().tolist() if (
                "Id" in opps.columns) else []
            opps = opps[~gone]

        facts = PullFacts(
            source=self.source_name, source_type=self.type_name,
            instance_url=opts.instance_url, incremental=False,
            warnings=[] if opts.instance_url else [
                "source.instance_url is not set: opportunities have no record links"],
            extra={"export_path": str(files.path)},
        )
        raw = RawOrg(
            opportunities=opps, users=frames["users"], history=frames["history"],
            stages=frames["stages"], accounts=frames["accounts"], deleted_ids=deleted,
            where={k: FILES[k] for k in FILES}, row_base=2,
        )
        return build_snapshot(raw, opts, facts, tz=opts.timezone)
