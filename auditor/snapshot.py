"""The Snapshot: what every connector produces and every rule / metric reads (DESIGN §4).

One schema, one validator. Connectors build frames however they like, then call
:func:`make_opportunities` / :func:`make_stage_history` / :func:`make_owners` to put them into the
schema (missing optional columns become NA, dtypes are cast), and :meth:`Snapshot.validate` checks
the result. Test fixtures go through the same path.

Conventions:
- strings: ``string[pyarrow]`` (missing = ``pd.NA``, never ``""``); low-cardinality text of
  many rows (history ``source_stage``) as a categorical over such strings;
- timestamps: tz-aware UTC (``datetime64[us, UTC]``);
- calendar dates (close date, next-step due date): tz-naive ``datetime64[us]`` at midnight;
- money: ``Float64`` amount plus a ``currency`` code; probability: ``Float64`` in 0..1;
- ``stage``: the common stage model, an ordered categorical (:data:`auditor.stages.STAGE_DTYPE`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from auditor.errors import SnapshotSchemaError
from auditor.lifecycle import derive_lifecycle
from auditor.memo import Memo
from auditor.stages import STAGE_DTYPE

STR = pd.StringDtype("pyarrow")
TS = pd.DatetimeTZDtype(unit="us", tz="UTC")
DATE = "datetime64[us]"
FLOAT = "Float64"
INT = "Int64"
BOOL = "boolean"
#: low-cardinality text kept dictionary-encoded: a categorical whose categories are STR text
#: (any categories; the dtype check compares with the string "category")
CAT = "category"

#: Opportunity columns, their dtypes and meaning. ``id`` is the CRM record id.
OPPORTUNITY_SCHEMA: dict[str, Any] = {
    "id": STR,
    "source": STR,
    "url": STR,
    "name": STR,
    "account_id": STR,
    "account_name": STR,
    "owner_id": STR,
    "pipeline": STR,
    "stage": STAGE_DTYPE,
    "source_stage": STR,
    # the lifecycle (auditor/lifecycle.py): connectors give the CRM's own is_closed / is_won
    # (NA where it says nothing); Snapshot.validate derives all four, never NA afterwards
    "is_open": BOOL,
    "is_closed": BOOL,
    "is_won": BOOL,
    "is_lost": BOOL,
    "amount": FLOAT,
    "currency": STR,
    "probability": FLOAT,
    "forecast_category": STR,
    "close_date": DATE,
    "created_at": TS,
    "updated_at": TS,
    "stage_entered_at": TS,
    "last_activity_at": TS,
    "next_step": STR,
    "next_step_due": DATE,
    "loss_reason": STR,
    "lead_source": STR,
    "close_date_changes": INT,
    "handoff_at": TS,
}
STAGE_HISTORY_SCHEMA: dict[str, Any] = {
    "opportunity_id": STR,
    "stage": STAGE_DTYPE,
    # a dozen source stages over ~5 history rows per deal: 80 MiB as text at a million deals,
    # a few as one-byte codes
    "source_stage": CAT,
    "entered_at": TS,
}
OWNER_SCHEMA: dict[str, Any] = {
    "id": STR,
    "name": STR,
    "email": STR,
    "active": BOOL,
    "manager_id": STR,
    "team": STR,
}

#: Forecast categories are normalised to these (Salesforce ForecastCategoryName / HubSpot).
FORECAST_CATEGORIES = ("omitted", "pipeline", "best_case", "commit", "closed")


@dataclass
class RejectedRow:
    """A source row or record that could not be used, and why."""

    where: str  # e.g. "sales_pipeline.csv row 17" or "Opportunity 006A..."
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"where": self.where, "reason": self.reason}


@dataclass(frozen=True)
class ApiLimit:
    """A request limit of the CRM's API, as its last response reported it."""

    limit: int
    remaining: int
    #: the window the limit counts over: "day", or a length such as "10 s"
    window: str
    #: what the limit applies to when that is narrower than the org or portal (the connected
    #: app of a Salesforce per-app limit); None: the whole org or portal
    scope: str | None = None

    @property
    def used(self) -> int:
        return self.limit - self.remaining

    def to_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "remaining": self.remaining, "used": self.used,
                "window": self.window, "scope": self.scope}


@dataclass
class ApiUsage:
    """What a pull cost at the CRM's API, the same for every API connector.

    File and warehouse sources call no API: their ``SnapshotMeta.api_usage`` is None.
    """

    #: requests to the CRM's API, retried attempts included (sign-ins are not API calls);
    #: equal to ``SnapshotMeta.api_calls``
    calls: int = 0
    #: the same requests by endpoint, "METHOD /path" with ids left out ("GET /query",
    #: "GET /crm/v3/objects/deals"); sums to ``calls``
    calls_by_endpoint: dict[str, int] = field(default_factory=dict)
    #: attempts that failed transiently (timeout, connection lost, 429, 5xx): each was
    #: retried, or was the last straw
    transient_failures: int = 0
    #: records read per object ("Opportunity", "User", "deals", "owners")
    records_read: dict[str, int] = field(default_factory=dict)
    #: the limits as last reported, by name: "daily" (both CRMs), "rolling" (HubSpot's
    #: ten-second window), "per_app" (a Salesforce connected app's daily share)
    limits: dict[str, ApiLimit] = field(default_factory=dict)
    #: sign-in requests (Salesforce password / JWT / client-credentials flows; HubSpot's
    #: private-app token needs none)
    logins: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "calls_by_endpoint": dict(sorted(self.calls_by_endpoint.items())),
            "transient_failures": self.transient_failures,
            "records_read": dict(self.records_read),
            "limits": {k: v.to_dict() for k, v in sorted(self.limits.items())},
            "logins": self.logins,
        }


@dataclass
class SnapshotMeta:
    """Facts about a pull: where it came from, what it cost, what was odd about it."""

    source: str
    source_type: str
    pulled_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: opportunity columns the source actually provides; a rule requiring a column the source
    #: does not provide is "not evaluable" rather than flagging every record.
    provided_fields: frozenset[str] = frozenset()
    #: True when the source supplies stage history (even if some records have none)
    has_stage_history: bool = False
    #: common stages the source's pipeline actually uses (its stage picklist or pipeline
    #: definition when it has one, else the stages its data holds), mapped; skipped-stage logic
    #: uses only these
    reached_stages: frozenset[str] = frozenset()
    #: what the source itself expects per source stage (id or label as in ``source_stage``):
    #: {"probability": 0..1, "forecast_category": one of FORECAST_CATEGORIES}, either optional.
    #: Salesforce OpportunityStage.DefaultProbability / ForecastCategoryName, HubSpot stage
    #: probability. Rule CD03 judges forecasts against it.
    stage_expectations: dict[str, dict[str, Any]] = field(default_factory=dict)
    api_calls: int = 0
    #: the pull's cost at the CRM's API; None for sources that call none (files, warehouses)
    api_usage: ApiUsage | None = None
    unmapped_stages: dict[str, int] = field(default_factory=dict)
    rejected: list[RejectedRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    loaded_rows: int = 0
    incremental: bool = False
    #: ids of opportunities removed at the source since the last pull (deleted, purged,
    #: archived, or no longer returned by the source's id reconciliation); incremental only
    deleted_ids: list[str] = field(default_factory=list)
    #: Snapshot column -> source field the integration user cannot read (field-level security);
    #: rules needing such a column are "not evaluable" with that reason
    unreadable_fields: dict[str, str] = field(default_factory=dict)
    #: the connector stream's incremental state (bookmark, last reconciliation), ISO strings;
    #: stored with the snapshot and handed back to the connector on the next pull
    stream_state: dict[str, str] = field(default_factory=dict)
    #: connector-specific facts for the run facts; not a contract between layers
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "source_type": self.source_type,
            "pulled_at": self.pulled_at.isoformat(),
            "provided_fields": sorted(self.provided_fields),
            "has_stage_history": self.has_stage_history,
            "reached_stages": sorted(self.reached_stages),
            "stage_expectations": self.stage_expectations,
            "api_calls": self.api_calls,
            "api_usage": self.api_usage.to_dict() if self.api_usage else None,
            "unmapped_stages": self.unmapped_stages,
            "rejected": [r.to_dict() for r in self.rejected],
            "rejected_count": len(self.rejected),
            "warnings": self.warnings,
            "loaded_rows": self.loaded_rows,
            "incremental": self.incremental,
            "deleted_ids": list(self.deleted_ids),
            "unreadable_fields": dict(self.unreadable_fields),
        }


def _conform(df: pd.DataFrame, schema: dict[str, Any], what: str) -> pd.DataFrame:
    """Add missing schema columns as NA, cast schema columns to their dtypes, keep extras after."""
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    src = df.reset_index(drop=True)
    for col, dtype in schema.items():
        if col in src.columns:
            try:
                out[col] = _cast(src[col], dtype)
            except (TypeError, ValueError) as exc:
                raise SnapshotSchemaError(
                    f"{what}: column {col!r} cannot be cast to {dtype}: {exc}"
                ) from exc
        else:
            out[col] = pd.Series(pd.NA, index=out.index, dtype=object).astype(dtype)
    for col in src.columns:
        if col not in schema:
            out[col] = src[col]
    return out


def as_category(s: pd.Series) -> pd.Series:
    """A conformed STR column dictionary-encoded (categories as plain text, as a Parquet round
    trip gives them back)."""
    cat = s.astype(CAT)
    return cat.cat.rename_categories(cat.cat.categories.astype(str))


def _cast(s: pd.Series, dtype: Any) -> pd.Series:
    if isinstance(dtype, pd.DatetimeTZDtype):
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            return s.dt.tz_convert("UTC").astype(dtype)
        if s.dtype.kind in "OSU" or isinstance(s.dtype, pd.StringDtype):
            return pd.to_datetime(s, utc=True, format="ISO8601").astype(dtype)
        return pd.to_datetime(s, utc=True).astype(dtype)
    if dtype == DATE:
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            s = s.dt.tz_localize(None)
        if s.dtype.kind in "OSU" or isinstance(s.dtype, pd.StringDtype):
            s = pd.to_datetime(s, format="ISO8601")
        s = pd.to_datetime(s)
        if isinstance(s.dtype, pd.DatetimeTZDtype):  # a UTC timestamp given for a date
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        return s.dt.normalize().astype(DATE)
    if isinstance(dtype, str) and dtype == CAT:
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object)
        return as_category(_cast(s, STR))
    if dtype is STR or dtype == STR:
        # empty / whitespace-only strings are missing values, never ""; one Arrow pass over
        # the offsets and one over the text (strip + len built two new string arrays)
        s = s.astype(STR)
        arr = pa.array(s.array)
        blank = pc.or_(pc.equal(pc.binary_length(arr), 0), pc.utf8_is_space(arr))
        return s.mask(blank.fill_null(False).to_numpy(zero_copy_only=False))
    return s.astype(dtype)


def make_opportunities(df: pd.DataFrame) -> pd.DataFrame:
    return _conform(df, OPPORTUNITY_SCHEMA, "opportunities")


def make_stage_history(df: pd.DataFrame | None = None) -> pd.DataFrame:
    if df is None:
        df = pd.DataFrame()
    return _conform(df, STAGE_HISTORY_SCHEMA, "stage_history")


def make_owners(df: pd.DataFrame | None = None) -> pd.DataFrame:
    if df is None:
        df = pd.DataFrame()
    return _conform(df, OWNER_SCHEMA, "owners")


def _check_frame(df: pd.DataFrame, schema: dict[str, Any], what: str) -> list[str]:
    problems = []
    for col, dtype in schema.items():
        if col not in df.columns:
            problems.append(f"{what}: missing column {col!r}")
        elif df[col].dtype != dtype:
            problems.append(f"{what}.{col}: dtype {df[col].dtype}, expected {dtype}")
    return problems


@dataclass
class Snapshot:
    """One pull of one source, in the common model."""

    opportunities: pd.DataFrame
    stage_history: pd.DataFrame
    owners: pd.DataFrame
    meta: SnapshotMeta
    #: values derived from this snapshot's data (auditor.memo; keys name their owner). Not an
    #: init field: a copy made with dataclasses.replace starts with an empty memo.
    memo: Memo = field(default_factory=Memo, init=False, repr=False, compare=False)

    def validate(self, *, stored: bool = False) -> Snapshot:
        """Check the schema; raise SnapshotSchemaError listing every problem. Returns self.

        ``stored=True`` is for frames this tool validated before storing them (the history
        store's Parquet): their columns and dtypes are still checked (cheap, and an older
        version's store may differ), but the scans over every value (missing or duplicate ids,
        probability range) are not repeated.
        """
        problems = _check_frame(self.opportunities, OPPORTUNITY_SCHEMA, "opportunities")
        problems += _check_frame(self.stage_history, STAGE_HISTORY_SCHEMA, "stage_history")
        problems += _check_frame(self.owners, OWNER_SCHEMA, "owners")
        opp = self.opportunities
        if "id" in opp.columns and not stored:
            if opp["id"].isna().any():
                problems.append(f"opportunities.id: {int(opp['id'].isna().sum())} missing ids")
            dup = opp["id"].duplicated()
            if dup.any():
                sample = ", ".join(opp.loc[dup, "id"].astype(str).head(5))
                problems.append(f"opportunities.id: {int(dup.sum())} duplicate ids (e.g. {sample})")
        if not isinstance(opp.index, pd.RangeIndex) or opp.index.start != 0:
            problems.append("opportunities: index must be a RangeIndex from 0")
        if "probability" in opp.columns and not stored:
            p = opp["probability"].dropna()
            if len(p) and ((p < 0) | (p > 1)).any():
                problems.append("opportunities.probability: values must be within 0..1")
        if problems:
            raise SnapshotSchemaError(
                "Snapshot does not match the schema:\n  " + "\n  ".join(problems)
            )
        lifecycle, contradiction = derive_lifecycle(opp)
        for col, values in lifecycle.items():
            opp[col] = values
        if contradiction is not None and contradiction not in self.meta.warnings:
            self.meta.warnings.append(contradiction)  # once, even when validated again
        return self

    @property
    def source(self) -> str:
        return self.meta.source
