"""``[source]`` options of the HubSpot connectors (API and UI export)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from connectors.base import SourceOptions
from connectors.currency import CurrencyOptions
from connectors.file_dates import DateOrder
from connectors.hubspot.fields import FieldOptions
from connectors.limits import FileLimits


class HubSpotOptions(SourceOptions, FieldOptions):
    """``type = "hubspot"``: the CRM API with a private-app access token."""

    #: environment variable holding the private-app access token (never the token itself)
    access_token_env: str = "HUBSPOT_ACCESS_TOKEN"
    #: API host, without a trailing slash (tests point it at a local fake)
    host: str = "https://api.hubapi.com"
    #: "date_entered": stage timing from hs_v2_date_entered_<stageId> (no extra calls);
    #: "full": the whole dealstage / closedate change history (propertiesWithHistory, 50 deals
    #: per page, so about twice the list calls) — gives re-entries and close-date change counts
    stage_history: Literal["date_entered", "full"] = "date_entered"
    #: deals per list call (HubSpot allows at most 100; 50 with property history)
    page_size: int = Field(default=100, ge=1, le=100)
    #: longest request URL the connector builds; longer property lists are split in passes
    max_url_length: int = Field(default=4000, ge=500)
    #: results per search call (at most 200) and the search API's result cap per query
    search_page_size: int = Field(default=200, ge=1, le=200)
    search_result_cap: int = Field(default=10_000, ge=1)
    #: minimum seconds between search calls (the search API allows about 4-5 per second)
    search_min_interval_s: float = Field(default=0.25, ge=0)
    #: incremental pulls also list archived deals, to report the ids archived since `since`
    track_archived: bool = True
    #: incremental pulls re-read deals modified this many seconds before the last pull's start:
    #: the search index lags behind writes, so a deal saved just before the last pull may only
    #: have become searchable after it
    lookback_s: float = Field(default=3600.0, ge=0)
    #: reconcile the stored deal ids against the list of live deals at least this often (days);
    #: also whenever the stored snapshot is older than 15 days
    reconcile_every_days: float = Field(default=7.0, gt=0, le=15)
    #: retries of rate-limited (429 TEN_SECONDLY_ROLLING), 5xx and connection failures
    retry_attempts: int = Field(default=5, ge=1, le=20)
    retry_base_delay_s: float = Field(default=1.0, ge=0)
    retry_max_delay_s: float = Field(default=60.0, ge=0)
    #: per-request timeout in seconds
    timeout_s: float = Field(default=30.0, gt=0)


class HubSpotExportOptions(SourceOptions, FieldOptions, CurrencyOptions, FileLimits):
    """``type = "hubspot_export"``: the deals CSV exported from HubSpot's deals view."""

    #: the exported CSV file (relative to the config file)
    path: Path
    #: optional owners CSV (columns id, name and/or email, optional active, team) to turn the
    #: "Deal owner" names of the export into owner ids; without it the name is the id
    owners_path: Path | None = None
    #: optional saved response of GET /crm/v3/pipelines/deals (stage ids, isClosed, probability)
    pipelines_path: Path | None = None
    #: extra header label → property name pairs (renamed or custom properties)
    export_columns: dict[str, str] = Field(default_factory=dict)
    #: text encoding of the export; "auto" detects it (reported in the run facts)
    encoding: str = "auto"
    #: order of slash dates (03/04/2024): "day_first" or "month_first"; unset: decided by the
    #: file when a value has a day over 12, else an error with samples
    date_order: DateOrder | None = None
