"""Where Fivetran and Airbyte put the CRM records: table and column names, as data.

Each layout turns a CRM API name (a Salesforce object / field, a HubSpot deal property) into the
warehouse table / column the tool lands it in, so the rows read can be renamed back to API names
and go through the API connectors' own mapping code. Sources of each layout are listed in
docs/connectors/warehouse.md; the names below were written from those documents:

- Fivetran Salesforce: one table per object, object and field names in snake_case
  (``StageName`` → ``stage_name``, custom ``Loss_Reason__c`` → ``loss_reason_c``); soft deletes
  in ``is_deleted`` (Salesforce's own flag) and ``_fivetran_deleted``.
- Airbyte Salesforce: one table per object (stream) named like the object, columns named like
  the API fields; ``IsDeleted`` for records in the recycle bin.
- Fivetran HubSpot: ``deal`` (``deal_id``, ``deal_pipeline_id``, ``deal_pipeline_stage_id``,
  ``owner_id``, ``is_deleted``, one ``property_<name>`` column per deal property),
  ``deal_stage`` (one row per stage a deal entered: ``deal_id``, ``value``, ``date_entered``),
  ``deal_pipeline``, ``deal_pipeline_stage``, ``owner``, ``deal_property_history``.
- Airbyte HubSpot: ``deals`` (``id``, ``archived``, ``properties_<name>`` per property),
  ``deal_pipelines`` (``stages`` as a JSON array, as the pipelines API returns it), ``owners``,
  ``deals_property_history``.

Names are matched case-insensitively against the reflected tables, so a destination that folds
case (PostgreSQL folds Airbyte's ``Opportunity`` to ``opportunity``) still matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Layout = Literal["fivetran", "airbyte"]
Crm = Literal["salesforce", "hubspot"]

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(api_name: str) -> str:
    """Fivetran naming: ``StageName`` → ``stage_name``, ``Budget__c`` → ``budget_c``."""
    return _CAMEL.sub("_", api_name.replace("__", "_")).lower()


#: Salesforce objects read, with the API name used in messages
SF_OBJECTS = ("Opportunity", "OpportunityHistory", "User", "OpportunityStage", "Account")


@dataclass(frozen=True)
class SalesforceLayout:
    name: Layout

    def table(self, obj: str) -> str:
        return snake(obj) if self.name == "fivetran" else obj

    def column(self, api_field: str) -> str:
        return snake(api_field) if self.name == "fivetran" else api_field

    def deleted_columns(self) -> tuple[str, ...]:
        return ("is_deleted", "_fivetran_deleted") if self.name == "fivetran" else ("IsDeleted",)


@dataclass(frozen=True)
class HubSpotLayout:
    """Logical tables: deal, deal_stage, pipeline, pipeline_stage, owner, property_history."""

    name: Layout
    tables: dict[str, str] = field(default_factory=dict)

    def table(self, logical: str) -> str:
        return HUBSPOT_TABLES[self.name][logical]

    def property_column(self, prop: str) -> str:
        """The deal table's column holding ``prop``."""
        if self.name == "fivetran":
            return FIVETRAN_DEAL_COLUMNS.get(prop, f"property_{prop}")
        return "id" if prop == "hs_object_id" else f"properties_{prop}"

    @property
    def deal_id(self) -> str:
        return "deal_id" if self.name == "fivetran" else "id"

    @property
    def deleted_columns(self) -> tuple[str, ...]:
        return ("is_deleted", "_fivetran_deleted") if self.name == "fivetran" else ("archived",)


HUBSPOT_TABLES: dict[str, dict[str, str]] = {
    "fivetran": {"deal": "deal", "deal_stage": "deal_stage", "pipeline": "deal_pipeline",
                 "pipeline_stage": "deal_pipeline_stage", "owner": "owner",
                 "property_history": "deal_property_history"},
    "airbyte": {"deal": "deals", "pipeline": "deal_pipelines", "owner": "owners",
                "property_history": "deals_property_history"},
}

#: Fivetran lifts these deal properties out of ``property_*`` into their own columns.
FIVETRAN_DEAL_COLUMNS: dict[str, str] = {
    "hs_object_id": "deal_id",
    "pipeline": "deal_pipeline_id",
    "dealstage": "deal_pipeline_stage_id",
    "hubspot_owner_id": "owner_id",
}

#: owner columns → the fields of an owners API record
OWNER_COLUMNS: dict[str, dict[str, str]] = {
    "fivetran": {"id": "owner_id", "firstName": "first_name", "lastName": "last_name",
                 "email": "email", "active": "is_active"},
    "airbyte": {"id": "id", "firstName": "firstName", "lastName": "lastName", "email": "email",
                "archived": "archived", "teams": "teams"},
}

#: property-history columns → (deal id, property name, value, timestamp)
HISTORY_COLUMNS: dict[str, tuple[str, str, str, str]] = {
    "fivetran": ("deal_id", "name", "value", "timestamp"),
    "airbyte": ("dealId", "property", "value", "timestamp"),
}
