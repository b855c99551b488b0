"""Salesforce field → Snapshot column mapping, as data.

Live (REST, Bulk 2.0) and export paths all produce frames whose columns are Salesforce API field
names (relationship fields flattened as ``Account.Name``); :mod:`.normalise` turns those into the
Snapshot using the specs below. Nothing here talks to Salesforce.

Each spec says which SF field feeds which column and how to parse it (``kind``), so that a JSON
``true``, a Bulk CSV ``true`` and an export ``1`` all become the same value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator

from connectors.base import SourceOptions

#: how a raw value is parsed (see normalise.parse_column)
Kind = Literal[
    "id", "text", "bool", "float", "percent", "date", "datetime", "date_as_ts", "forecast"
]
CustomKind = Literal["text", "float", "bool", "date", "datetime"]


@dataclass(frozen=True)
class FieldSpec:
    sf_field: str
    column: str
    kind: Kind


#: Standard Opportunity fields every org has. ``Account.Name`` is a relationship field (null when
#: the opportunity has no account).
OPPORTUNITY_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("Id", "id", "id"),
    FieldSpec("Name", "name", "text"),
    FieldSpec("AccountId", "account_id", "id"),
    FieldSpec("Account.Name", "account_name", "text"),
    FieldSpec("OwnerId", "owner_id", "id"),
    FieldSpec("StageName", "source_stage", "text"),
    FieldSpec("IsClosed", "is_closed", "bool"),
    FieldSpec("IsWon", "is_won", "bool"),
    FieldSpec("Amount", "amount", "float"),
    FieldSpec("Probability", "probability", "percent"),
    FieldSpec("ForecastCategoryName", "forecast_category", "forecast"),
    FieldSpec("CloseDate", "close_date", "date"),
    FieldSpec("CreatedDate", "created_at", "datetime"),
    FieldSpec("LastModifiedDate", "updated_at", "datetime"),
    FieldSpec("LastActivityDate", "last_activity_at", "date_as_ts"),
    FieldSpec("NextStep", "next_step", "text"),
    FieldSpec("LeadSource", "lead_source", "text"),
)

#: Read with opportunities but not Snapshot columns: the owner's name fills in owners that the
#: User query did not return (e.g. excluded by ``owner_filter``).
OPPORTUNITY_EXTRA_FIELDS: tuple[str, ...] = ("Owner.Name",)

#: OpportunityHistory: one row per change of stage, amount, probability or close date.
HISTORY_FIELDS: tuple[str, ...] = (
    "Id", "OpportunityId", "StageName", "CloseDate", "PrevCloseDate", "CreatedDate",
)
USER_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("Id", "id", "id"),
    FieldSpec("Name", "name", "text"),
    FieldSpec("Email", "email", "text"),
    FieldSpec("IsActive", "active", "bool"),
    FieldSpec("ManagerId", "manager_id", "id"),
)
STAGE_FIELDS: tuple[str, ...] = (
    "ApiName", "MasterLabel", "IsActive", "IsClosed", "IsWon", "SortOrder", "DefaultProbability",
    "ForecastCategoryName",
)
ACCOUNT_FIELDS: tuple[str, ...] = ("Id", "Name")

#: Salesforce's stock stage picklist with its default probability and forecast category (the
#: OpportunityStage values of a new org). Used as the stages' expectation only when an export
#: lacks OpportunityStage.csv; the org's own OpportunityStage rows always win.
STOCK_STAGE_EXPECTATIONS: dict[str, tuple[float, str]] = {
    "Prospecting": (0.10, "pipeline"),
    "Qualification": (0.10, "pipeline"),
    "Needs Analysis": (0.20, "pipeline"),
    "Value Proposition": (0.50, "pipeline"),
    "Id. Decision Makers": (0.60, "pipeline"),
    "Perception Analysis": (0.70, "pipeline"),
    "Proposal/Price Quote": (0.75, "pipeline"),
    "Negotiation/Review": (0.90, "pipeline"),
    "Closed Won": (1.00, "closed"),
    "Closed Lost": (0.00, "omitted"),
}

#: ForecastCategoryName values (API names and labels) → the Snapshot's categories.
FORECAST_CATEGORIES: dict[str, str] = {
    "pipeline": "pipeline",
    "best case": "best_case",
    "bestcase": "best_case",
    "commit": "commit",
    "closed": "closed",
    "omitted": "omitted",
}

#: Salesforce's "no reference" id in exports (an all-zero id with the 18-char suffix).
EMPTY_REFERENCE_IDS: frozenset[str] = frozenset({"000000000000000AAA", "000000000000000"})


class SalesforceFieldOptions(SourceOptions):
    """Org-specific fields, shared by the live and the export connector."""

    #: custom field holding the loss reason, e.g. "Loss_Reason__c" (no standard field exists)
    loss_reason_field: str | None = None
    #: date field holding when the next step is due, e.g. "Next_Step_Date__c"
    next_step_due_field: str | None = None
    #: date / datetime field recording the handoff to delivery, e.g. "Handoff_Date__c"
    handoff_field: str | None = None
    #: field naming the pipeline, e.g. "RecordType.Name" (Salesforce has no pipeline object)
    pipeline_field: str | None = None
    #: currency code field in multi-currency orgs ("CurrencyIsoCode")
    currency_field: str | None = None
    #: currency of every amount in a single-currency org, e.g. "USD"
    currency: str | None = None
    #: User field used as the owner's team, e.g. "Department" or "UserRole.Name"
    team_field: str | None = None
    #: extra opportunity columns: column name → SF field, e.g. {budget = "Budget__c"}
    custom_fields: dict[str, str] = Field(default_factory=dict)
    #: how to parse a custom column: text (default), float, bool, date, datetime
    custom_field_types: dict[str, CustomKind] = Field(default_factory=dict)

    @field_validator(
        "loss_reason_field", "next_step_due_field", "handoff_field", "pipeline_field",
        "currency_field", "team_field",
    )
    @classmethod
    def _field_name(cls, v: str | None) -> str | None:
        return None if v is None else soql_identifier(v)

    @field_validator("custom_fields")
    @classmethod
    def _no_schema_clash(cls, v: dict[str, str]) -> dict[str, str]:
        for sf_field in v.values():
            soql_identifier(sf_field)
        from auditor.snapshot import OPPORTUNITY_SCHEMA

        clash = sorted(set(v) & set(OPPORTUNITY_SCHEMA))
        if clash:
            raise ValueError(
                f"custom column name(s) {', '.join(clash)} are Snapshot columns; choose other names"
            )
        return v


def opportunity_specs(opts: SalesforceFieldOptions) -> list[FieldSpec]:
    """The standard specs plus the ones this org's configuration adds."""
    specs = list(OPPORTUNITY_FIELDS)
    optional: list[tuple[str | None, str, Kind]] = [
        (opts.loss_reason_field, "loss_reason", "text"),
        (opts.next_step_due_field, "next_step_due", "date"),
        (opts.handoff_field, "handoff_at", "datetime"),
        (opts.pipeline_field, "pipeline", "text"),
        (opts.currency_field, "currency", "text"),
    ]
    specs += [FieldSpec(f, col, kind) for f, col, kind in optional if f]
    for col, sf_field in opts.custom_fields.items():
        specs.append(FieldSpec(sf_field, col, opts.custom_field_types.get(col, "text")))
    return specs


def user_specs(opts: SalesforceFieldOptions) -> list[FieldSpec]:
    specs = list(USER_FIELDS)
    if opts.team_field:
        specs.append(FieldSpec(opts.team_field, "team", "text"))
    return specs


#: an API field name, optionally through relationships: Account.Owner.Name, Budget__c
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*")


def soql_identifier(name: str) -> str:
    """A configured field name, checked before it is put into a SOQL select list.

    Field names come from the config and are interpolated into SOQL, so anything that is not a
    plain (relationship) API name — spaces, commas, parentheses, quotes — is refused rather than
    escaped: there is no legitimate field name that needs them.
    """
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a Salesforce API field name (letters, digits and _, "
            "relationships joined by '.', e.g. Loss_Reason__c or Owner.UserRole.Name)"
        )
    return name


def select_list(fields: list[str] | tuple[str, ...]) -> str:
    """SOQL select list without duplicates, in first-seen order."""
    return ", ".join(dict.fromkeys(fields))
