"""The ``[source]`` keys of the generic CSV connector (``type = "csv"``), validated by pydantic.

Mappings go Snapshot column → CSV header, so one header may feed two columns (Maven's
``account`` is both ``account_id`` and ``account_name``). See docs/connectors/csv.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from auditor.config import Section, check_timezone
from auditor.snapshot import OPPORTUNITY_SCHEMA, OWNER_SCHEMA, STAGE_HISTORY_SCHEMA
from auditor.suggest import did_you_mean
from connectors.base import SourceOptions
from connectors.csv_parsing import DEFAULT_FALSE, DEFAULT_TRUE
from connectors.currency import CurrencyOptions
from connectors.file_dates import DateOrder
from connectors.limits import FileLimits

#: opportunity columns a mapping may feed; "stage" is accepted as a spelling of "source_stage"
#: because the CSV holds the source's stage, which the stage map turns into the common stage.
MAPPABLE_OPPORTUNITY = (set(OPPORTUNITY_SCHEMA) - {"source", "stage"}) | {"stage"}
HISTORY_KEYS = set(STAGE_HISTORY_SCHEMA) - {"source_stage"}
DEFAULT_NA = ["", "NA", "N/A", "n/a", "#N/A", "null", "NULL", "None", "none", "nan", "NaN"]


class CsvLookup(Section):
    """Another CSV joined onto the opportunities (e.g. an accounts file giving the sector)."""

    #: the lookup file (relative to the config file)
    file: Path
    #: header in the lookup file holding the key
    key: str
    #: opportunity column (Snapshot or extra column) matched against ``key``
    on: str
    #: new extra column name → header in the lookup file
    columns: dict[str, str]

    @field_validator("columns")
    @classmethod
    def _new_columns(cls, v: dict[str, str]) -> dict[str, str]:
        clash = sorted(set(v) & set(OPPORTUNITY_SCHEMA))
        if clash:
            raise ValueError(f"{', '.join(clash)} is a Snapshot column; a lookup adds new columns")
        if not v:
            raise ValueError("name at least one column to take from the lookup file")
        return v


class CsvOptions(SourceOptions, CurrencyOptions, FileLimits):
    #: the opportunities file (required); relative paths are relative to the config file
    opportunities: Path
    #: optional stage history file: one row per stage entry (opportunity_id, stage, entered_at)
    stage_history: Path | None = None
    #: optional owners file; for team lookups like Maven's sales_teams.csv too
    owners: Path | None = None
    #: Snapshot column → CSV header, for the opportunities file (empty: headers named like
    #: Snapshot columns are used as they are)
    columns: dict[str, str] = Field(default_factory=dict)
    history_columns: dict[str, str] = Field(default_factory=dict)
    owner_columns: dict[str, str] = Field(default_factory=dict)
    #: custom fields to carry as extra opportunity columns: column name → CSV header
    extra_columns: dict[str, str] = Field(default_factory=dict)
    #: other CSVs joined on a column, adding extra columns (e.g. account sector)
    lookups: list[CsvLookup] = Field(default_factory=list)
    #: compose the id from headers when the export has none, e.g. "{Topic}|{Created On}";
    #: "{_row}" is the row number (a generated id, stable only while the file is unchanged)
    id_template: str | None = None
    #: a status column that decides won / lost, e.g. Dynamics' "Status" or Pipedrive's
    #: "Deal - Status"; rows whose status is in status_map take that common stage
    status_column: str | None = None
    #: status value (case-insensitive) → common stage, e.g.
    #: {Won = "closed_won", Lost = "closed_lost"}
    status_map: dict[str, str] = Field(default_factory=dict)
    #: per-column vocabularies, applied before parsing: column → {value in the file = value
    #: understood}, e.g. {is_closed = {Open = "false", Won = "true"}, forecast_category =
    #: {Committed = "commit"}} (case-insensitive; other values are read as they are)
    value_maps: dict[str, dict[str, str]] = Field(default_factory=dict)
    #: what the opportunities' owner column holds: the owners file's "id", "email" or "name"
    owner_match: Literal["id", "email", "name"] = "id"
    #: compose the name from headers, e.g. "{account} – {product}" (missing parts left out)
    name_template: str | None = None
    #: link to the record, e.g. "https://crm.example.com/deals/{id}" (any header may be used)
    url_template: str | None = None
    stage_map_default: Literal["salesforce", "hubspot"] | None = None
    #: a stage the map does not know: keep the row (stage NA, reported) or reject the row
    unknown_stage: Literal["keep", "reject"] = "keep"
    #: add every manager_id that is not itself an owner as an owner row (name = the id)
    managers_as_owners: bool = True
    #: a strftime format for every date cell; default: ISO 8601 and common unambiguous forms
    date_format: str | None = None
    #: order of "03/04/2017": "day_first" or "month_first"; unset: decided by the file when a
    #: value has a day over 12, else such dates are an error showing samples
    date_order: DateOrder | None = None
    #: older spelling of date_order: true = day first, false = month first
    dayfirst: bool | None = None
    #: time zone of timestamps written without an offset, and of calendar dates
    timezone: str = "UTC"
    decimal: Literal[".", ","] = "."
    #: thousands separator; default "," when decimal is "." and "." when decimal is ","
    thousands: str | None = None
    #: currency of amounts that carry no code and have no currency column value
    currency: str | None = None
    #: text encoding of the files; "auto" detects it per file (reported in the run facts)
    encoding: str = "auto"
    delimiter: str = ","
    #: cell texts that mean "missing" (compared after trimming spaces)
    na_values: list[str] = Field(default_factory=lambda: list(DEFAULT_NA))
    true_values: list[str] = Field(default_factory=lambda: list(DEFAULT_TRUE))
    false_values: list[str] = Field(default_factory=lambda: list(DEFAULT_FALSE))
    #: probability given in percent (0..100)? unset: percent when a cell has "%" or any value > 1
    probability_percent: bool | None = None
    #: stop with an error when more than this share of opportunity rows is rejected
    max_rejected_share: float = Field(default=1.0, ge=0.0, le=1.0)

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: dict[str, str]) -> dict[str, str]:
        _known(v, MAPPABLE_OPPORTUNITY, "opportunity column")
        if "stage" in v and "source_stage" in v:
            raise ValueError("map either `stage` or `source_stage` (they mean the same), not both")
        return {("source_stage" if k == "stage" else k): h for k, h in v.items()}

    @field_validator("history_columns")
    @classmethod
    def _history(cls, v: dict[str, str]) -> dict[str, str]:
        _known(v, HISTORY_KEYS, "stage history column")
        return v

    @field_validator("owner_columns")
    @classmethod
    def _owners(cls, v: dict[str, str]) -> dict[str, str]:
        _known(v, set(OWNER_SCHEMA), "owner column")
        return v

    @field_validator("extra_columns")
    @classmethod
    def _extras(cls, v: dict[str, str]) -> dict[str, str]:
        clash = sorted(set(v) & set(OPPORTUNITY_SCHEMA))
        if clash:
            raise ValueError(
                f"{', '.join(clash)} is a Snapshot column; map it under `columns` instead"
            )
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_timezone(v, example="UTC")

    @field_validator("delimiter")
    @classmethod
    def _delim(cls, v: str) -> str:
        if len(v) != 1:
            raise ValueError("must be exactly one character (use \"\\t\" for tab)")
        return v

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str | None) -> str | None:
        if v is not None and not (len(v) == 3 and v.isalpha()):
            raise ValueError("must be a three-letter ISO 4217 code like 'USD'")
        return v.upper() if v else v

    @model_validator(mode="after")
    def _lookup_names(self) -> CsvOptions:
        known = set(OPPORTUNITY_SCHEMA) | set(self.extra_columns)
        for i, lookup in enumerate(self.lookups):
            if lookup.on not in known:
                raise ValueError(
                    f"lookups[{i}].on = {lookup.on!r} is neither a Snapshot column nor an "
                    f"earlier extra column"
                )
            dup = sorted(set(lookup.columns) & (known - set(OPPORTUNITY_SCHEMA)))
            if dup:
                raise ValueError(f"lookups[{i}].columns: {', '.join(dup)} is already a column")
            known |= set(lookup.columns)
        return self

    @field_validator("status_map")
    @classmethod
    def _status_map(cls, v: dict[str, str]) -> dict[str, str]:
        from auditor.stages import STAGE_ORDER

        bad = sorted(f"{k!r} = {s!r}" for k, s in v.items() if s not in STAGE_ORDER)
        if bad:
            raise ValueError(f"{', '.join(bad)}: not a common stage; use one of "
                             f"{', '.join(STAGE_ORDER)}")
        return v

    @field_validator("value_maps")
    @classmethod
    def _value_maps(cls, v: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        _known(v, MAPPABLE_OPPORTUNITY, "value_maps column")
        return {("source_stage" if k == "stage" else k): m for k, m in v.items()}

    @model_validator(mode="after")
    def _ids(self) -> CsvOptions:
        if self.id_template and "id" in self.columns:
            raise ValueError("set either `columns.id` or `id_template`, not both")
        if self.status_map and not self.status_column:
            raise ValueError("status_map needs status_column (the header holding the status)")
        return self

    @model_validator(mode="after")
    def _order(self) -> CsvOptions:
        if self.dayfirst is not None:
            order = "day_first" if self.dayfirst else "month_first"
            if self.date_order not in (None, order):
                raise ValueError(f"dayfirst = {str(self.dayfirst).lower()} contradicts "
                                 f"date_order = {self.date_order!r}; keep only date_order")
            self.date_order = order
        return self

    @model_validator(mode="after")
    def _separators(self) -> CsvOptions:
        if self.thousands is not None and (
            len(self.thousands) != 1 or self.thousands == self.decimal or self.thousands.isdigit()
        ):
            raise ValueError(
                f"`thousands` must be one non-digit character other than the decimal "
                f"separator {self.decimal!r} (got {self.thousands!r})"
            )
        return self


def _known(mapping: dict[str, str], allowed: set[str], what: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        hint = did_you_mean(unknown[0], allowed)
        raise ValueError(
            f"unknown {what} {', '.join(map(repr, unknown))}{hint}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
