"""HubSpot deal properties → Snapshot columns, as data.

Transport never looks at these tables; the normaliser reads them to convert values, and the
export connector reads :data:`EXPORT_LABELS` to turn UI-export headers back into property names.
Which property feeds a configurable column (loss reason, last activity, next step, ...) comes
from :class:`FieldOptions`; the rest is fixed here.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from auditor.config import Section, check_timezone
from auditor.snapshot import OPPORTUNITY_SCHEMA

#: How a property's string value is converted:
#: str – text; float – number; bool – "true"/"false"; ts – timestamp (UTC);
#: date – calendar date in the portal's time zone; forecast – forecast category.
Kind = Literal["str", "float", "bool", "ts", "date", "forecast"]

#: Fixed property → (Snapshot column, kind). ``dealstage`` / ``pipeline`` are handled through the
#: pipelines' stage metadata, not here.
STANDARD_PROPERTIES: dict[str, tuple[str, Kind]] = {
    "dealname": ("name", "str"),
    "amount": ("amount", "float"),
    "deal_currency_code": ("currency", "str"),
    "hubspot_owner_id": ("owner_id", "str"),
    "closedate": ("close_date", "date"),
    "createdate": ("created_at", "ts"),
    "hs_lastmodifieddate": ("updated_at", "ts"),
    "hs_deal_stage_probability": ("probability", "float"),
    "hs_manual_forecast_category": ("forecast_category", "forecast"),
    "hs_analytics_source": ("lead_source", "str"),
    "hs_is_closed": ("is_closed", "bool"),
    "hs_is_closed_won": ("is_won", "bool"),
}

#: Configurable columns: option name in FieldOptions → (Snapshot column, kind).
CONFIGURABLE_COLUMNS: dict[str, tuple[str, Kind]] = {
    "loss_reason_property": ("loss_reason", "str"),
    "last_activity_property": ("last_activity_at", "ts"),
    "next_activity_date_property": ("next_step_due", "date"),
    "next_step_property": ("next_step", "str"),
}

#: Properties the connector always asks for besides the mapped ones.
STAGE_PROPERTIES = ("dealstage", "pipeline")

#: Prefix of the per-stage "date entered" properties; the stage id follows.
DATE_ENTERED_PREFIX = "hs_v2_date_entered_"

#: Properties whose full change history is pulled in ``stage_history = "full"`` mode.
HISTORY_PROPERTIES = ("dealstage", "closedate")

#: HubSpot's manual forecast categories → the Snapshot's normalised ones.
FORECAST_CATEGORIES: dict[str, str] = {
    "omit": "omitted",
    "omitted": "omitted",
    "pipeline": "pipeline",
    "best_case": "best_case",
    "best case": "best_case",
    "commit": "commit",
    "closed": "closed",
    # UI-export labels of the internal values (OMIT, CLOSED, ...)
    "not forecasted": "omitted",
    "not_forecasted": "omitted",
    "closed won": "closed",
    "closed_won": "closed",
    # Dynamics 365's label of commit, met in migrated portals
    "committed": "commit",
}

#: Textual booleans as they appear in API values ("true"/"false") and UI exports.
BOOLEANS: dict[str, bool] = {
    "true": True, "false": False, "yes": True, "no": False, "1": True, "0": False,
}

ASSOCIATED_COMPANY = "associated_company"
ASSOCIATED_COMPANY_ID = "associated_company_id"

#: UI-export header labels (matched case-insensitively) → property names. Portals with
#: renamed / custom properties add their own through ``export_columns``.
EXPORT_LABELS: dict[str, str] = {
    "Record ID": "hs_object_id",
    "Deal ID": "hs_object_id",
    "Deal Name": "dealname",
    "Deal Stage": "dealstage",
    "Pipeline": "pipeline",
    "Close Date": "closedate",
    "Deal owner": "hubspot_owner_id",
    "Amount": "amount",
    "Currency": "deal_currency_code",
    "Create Date": "createdate",
    "Last Modified Date": "hs_lastmodifieddate",
    "Deal probability": "hs_deal_stage_probability",
    "Deal Stage Probability": "hs_deal_stage_probability",
    "Forecast category": "hs_manual_forecast_category",
    "Original Source Type": "hs_analytics_source",
    "Original Source": "hs_analytics_source",
    "Is Closed": "hs_is_closed",
    "Is Deal Closed?": "hs_is_closed",
    "Is Deal Closed": "hs_is_closed",
    "Is closed won": "hs_is_closed_won",
    "Is Closed Won": "hs_is_closed_won",
    "Closed Lost Reason": "closed_lost_reason",
    "Last Activity Date": "notes_last_updated",
    "Next Activity Date": "notes_next_activity_date",
    "Next step": "hs_next_step",
    # associations are columns of the UI export (the API needs an associations request)
    "Associated Company": ASSOCIATED_COMPANY,
    "Associated Company (Primary)": ASSOCIATED_COMPANY,
    "Associated Companies": ASSOCIATED_COMPANY,
    "Associated Company IDs": ASSOCIATED_COMPANY_ID,
    "Associated Company ID (Primary)": ASSOCIATED_COMPANY_ID,
    "Associated Company IDs (Primary)": ASSOCIATED_COMPANY_ID,
}

#: Export-only columns (not deal properties, never requested from the API) → Snapshot columns.
#: A deal with several companies lists them separated by ";": the first one is used.
EXPORT_ONLY_PROPERTIES: dict[str, tuple[str, Kind]] = {
    ASSOCIATED_COMPANY: ("account_name", "str"),
    ASSOCIATED_COMPANY_ID: ("account_id", "str"),
}

#: UI-export "date entered" columns: ``Date entered "<stage> (<pipeline>)"`` (quotes optional).
DATE_ENTERED_HEADER = re.compile(
    r'^\s*date entered\s+"?(?P<stage>.+?)\s+\((?P<pipeline>[^()]+)\)"?\s*$', re.IGNORECASE
)


class FieldOptions(Section):
    """Which deal properties feed the configurable Snapshot columns (API and export alike)."""

    #: property holding the loss reason (→ loss_reason)
    loss_reason_property: str | None = "closed_lost_reason"
    #: property holding the last activity time (→ last_activity_at)
    last_activity_property: str | None = "notes_last_updated"
    #: property holding the next scheduled activity (→ next_step_due, a date in the portal zone)
    next_activity_date_property: str | None = "notes_next_activity_date"
    #: property holding the next-step text (→ next_step)
    next_step_property: str | None = "hs_next_step"
    #: extra Snapshot columns (e.g. qualification fields): column name → deal property
    custom_fields: dict[str, str] = Field(default_factory=dict)
    #: IANA zone of the portal; dates (close date, next activity) are taken in this zone.
    #: API: default from the account-info endpoint; export: default UTC (with a warning).
    portal_timezone: str | None = None
    #: HubSpot portal (hub) id for record links; API default: the account-info endpoint
    portal_id: int | None = None
    #: currency for deals without ``deal_currency_code`` (single-currency portals)
    default_currency: str | None = None

    @field_validator("portal_timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return None if v is None else check_timezone(v, example="America/New_York")

    @field_validator("custom_fields")
    @classmethod
    def _custom(cls, v: dict[str, str]) -> dict[str, str]:
        clash = sorted(set(v) & set(OPPORTUNITY_SCHEMA))
        if clash:
            raise ValueError(f"custom field names {clash} are Snapshot columns; pick other names")
        return v

    def columns(self) -> list[tuple[str, str, Kind]]:
        """(property, column, kind) for this configuration, custom fields last."""
        out = [(p, c, k) for p, (c, k) in STANDARD_PROPERTIES.items()]
        for opt, (column, kind) in CONFIGURABLE_COLUMNS.items():
            prop = getattr(self, opt)
            if prop:
                out.append((prop, column, kind))
        out += [(prop, column, "str") for column, prop in self.custom_fields.items()]
        return out

    def properties(self) -> list[str]:
        """Deal properties to request (without the per-stage date-entered ones)."""
        return list(dict.fromkeys([*STAGE_PROPERTIES, *(p for p, _, _ in self.columns())]))
