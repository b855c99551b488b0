"""Raw Salesforce records → Snapshot. Shared by the REST, Bulk 2.0 and export paths.

Input frames have Salesforce API field names as columns (relationship fields flattened as
``Account.Name``) and raw values: JSON scalars from REST, strings from Bulk / export CSV. Every
value is first turned into text, then parsed by the field's kind, so all three paths meet in the
same representation and give identical Snapshots for the same data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from auditor.errors import SourceDataError
from auditor.lifecycle import stage_outcome
from auditor.snapshot import (
    STR,
    ApiUsage,
    RejectedRow,
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_owners,
    make_stage_history,
)
from auditor.stages import StageMap
from connectors.file_dates import is_slash, parse_slash, why_not
from connectors.salesforce.fields import (
    EMPTY_REFERENCE_IDS,
    FORECAST_CATEGORIES,
    STOCK_STAGE_EXPECTATIONS,
    FieldSpec,
    SalesforceFieldOptions,
    opportunity_specs,
    user_specs,
)

_BOOLS = {"true": True, "1": True, "false": False, "0": False, "yes": True, "no": False}
_ZONED = r"(?:Z|[+-]\d{2}:?\d{2})$"


@dataclass
class RawOrg:
    """One org's records as pulled or exported, before mapping."""

    opportunities: pd.DataFrame
    users: pd.DataFrame | None = None
    #: None = history was not pulled / not exported
    history: pd.DataFrame | None = None
    #: OpportunityStage metadata; None = not available
    stages: pd.DataFrame | None = None
    #: Account Id → Name, used when the opportunity frame has no ``Account.Name``
    accounts: pd.DataFrame | None = None
    #: ids of opportunities removed at the source (→ ``SnapshotMeta.deleted_ids``)
    deleted_ids: list[str] = field(default_factory=list)
    #: labels used in messages, e.g. {"opportunities": "Opportunity.csv"}
    where: dict[str, str] = field(default_factory=dict)
    #: number of the first data row in messages: 1 = record number, 2 = CSV line (after header)
    row_base: int = 1
    #: exports: per frame key, whether slash dates are day first (absent / None: month first)
    day_first: dict[str, bool | None] = field(default_factory=dict)


@dataclass
class PullFacts:
    """What the transport knows about the pull, copied into ``SnapshotMeta``."""

    source: str
    source_type: str
    instance_url: str | None = None
    api_calls: int = 0
    api_usage: ApiUsage | None = None
    incremental: bool = False
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    #: Snapshot column → field hidden from the integration user (field-level security)
    unreadable_fields: dict[str, str] = field(default_factory=dict)
    #: the stream's incremental state after this pull (see connectors.streams)
    stream_state: dict[str, str] = field(default_factory=dict)


class _Notes:
    """Collects warnings about values that could not be read."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        #: "file: field" → values present / unreadable / an example (check-config's parse rates)
        self.unreadable: dict[str, dict[str, Any]] = {}

    def bad_values(self, where: str, sf_field: str, kind: str, raw: pd.Series,
                   bad: pd.Series, ids: pd.Series | None) -> None:
        n = int(bad.sum())
        if not n:
            return
        self.unreadable[f"{where}: {sf_field}"] = {
            "kind": kind, "bad": n, "of": int(as_text(raw).notna().sum()),
            "example": str(raw.loc[bad.idxmax()])}
        first = bad.idxmax()
        rec = f" in record {ids.loc[first]}" if ids is not None else ""
        self.warnings.append(
            f"{where}: {n} value(s) of {sf_field} could not be read as {kind} "
            f"(e.g. {raw.loc[first]!r}{rec}); treated as missing"
        )


#: whitespace as str.strip() sees it, plus a byte order mark (concatenated export files)
_STRIP = "".join(chr(c) for c in range(0x3001) if chr(c).isspace()) + "\ufeff"


def isin(s: pd.Series, values: pd.Series) -> pd.Series:
    """``s.isin(values)`` for text columns by Arrow's hash lookup: pandas' isin on Arrow strings
    builds one Python scalar per value (5.6 s for a full pull's million ids, here 0.25 s)."""
    arr = pa.array(s.astype(STR).array)
    found = pc.is_in(arr, value_set=pa.array(values.astype(STR).dropna().array, type=arr.type))
    return pd.Series(found.fill_null(False).to_numpy(zero_copy_only=False), index=s.index)


def as_text(s: pd.Series) -> pd.Series:
    """Any raw column → stripped text with NA for null / empty."""
    t = s.astype(STR).str.strip(_STRIP)
    return t.where(t.str.len() > 0)


def parse_column(
    raw: pd.Series, kind: str, *, tz: str = "UTC", notes: _Notes | None = None,
    where: str = "", sf_field: str = "", ids: pd.Series | None = None,
    day_first: bool | None = None,
) -> pd.Series:
    """Parse one raw column by kind, vectorized. Unreadable values become NA with a warning.

    ``day_first`` is the order of slash dates (3/31/24) in exports and reports, decided per file
    by the export connector; None (the API, which never sends them) reads them month first.
    """
    t = as_text(raw)
    if kind in ("text",):
        return t
    if kind == "id":
        return t.where(~t.isin(list(EMPTY_REFERENCE_IDS)))
    if kind == "bool":
        out = t.str.lower().map(_BOOLS).astype("boolean")
    elif kind in ("float", "percent"):
        out = pd.to_numeric(t, errors="coerce").astype("Float64")
        if kind == "percent":
            out = out / 100
    elif kind == "forecast":
        out = t.str.lower().map(FORECAST_CATEGORIES).astype(STR)
    elif kind in ("date", "date_as_ts"):
        # a date may come with a time part in some exports; the calendar day is what counts
        day = t.str.extract(r"^(\d{4}-\d{2}-\d{2})", expand=False)
        out = pd.to_datetime(day, format="%Y-%m-%d", errors="coerce")
        out = out.astype("datetime64[us]")
        rest = out.isna() & t.notna() & is_slash(t)
        if rest.any():  # 3/31/24 in a report export, 31/03/2024 in a European one
            out[rest] = parse_slash(t, rest, bool(day_first))[rest]
        if kind == "date_as_ts":
            out = out.dt.tz_localize("UTC")
    elif kind == "datetime":
        out = parse_datetime(t, tz, day_first)
    else:  # pragma: no cover - kinds are a Literal
        raise ValueError(kind)
    if notes is not None:
        bad = out.isna() & t.notna()
        if kind in ("date", "date_as_ts", "datetime") and day_first is not None and bad.any():
            # a slash date that is no date in the file's order: say why (31 is not a month)
            first = bad.idxmax()
            why = why_not(t.loc[[first]], day_first,
                          "source.date_order, or the file's other dates when it is unset")
            kind = why.iloc[0].removeprefix(" as ") if why.iloc[0] else kind
        notes.bad_values(where, sf_field, kind, t, bad, ids)
    return out


def parse_datetime(t: pd.Series, tz: str, day_first: bool | None = None) -> pd.Series:
    """ISO datetimes with a zone are converted; ones without are taken in ``tz`` (exports)."""
    out = pd.Series(pd.NaT, index=t.index, dtype="datetime64[us, UTC]")
    zoned = t.str.contains(_ZONED, regex=True).fillna(False).astype(bool)
    if zoned.any():
        out[zoned] = pd.to_datetime(t[zoned], utc=True, format="ISO8601", errors="coerce")
    naive = ~zoned & t.notna()
    if naive.any():
        local = pd.to_datetime(t[naive], format="ISO8601", errors="coerce")
        local = local.astype("datetime64[us]")
        rest = local.isna()
        if rest.any():  # a report or spreadsheet: "10/28/2023 8:45 PM", in the file's order
            text = t[naive]
            slash = rest & is_slash(text)
            if slash.any():
                local[slash] = parse_slash(text, slash, bool(day_first))[slash]
            other = rest & ~slash
            if other.any():
                local[other] = pd.to_datetime(text[other], format="mixed", errors="coerce")
        local = local.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        out[naive] = local.dt.tz_convert("UTC")
    return out


def _parse_frame(
    raw: pd.DataFrame, specs: list[FieldSpec], *, tz: str, notes: _Notes, where: str,
    ids: pd.Series | None, day_first: bool | None = None,
) -> tuple[pd.DataFrame, set[str]]:
    cols: dict[str, pd.Series] = {}
    for spec in specs:
        if spec.sf_field in raw.columns:
            cols[spec.column] = parse_column(
                raw[spec.sf_field], spec.kind, tz=tz, notes=notes, where=where,
                sf_field=spec.sf_field, ids=ids, day_first=day_first,
            )
    return pd.DataFrame(cols, index=raw.index), set(cols)


def _stage_metadata(stages: pd.DataFrame | None, notes: _Notes) -> pd.DataFrame | None:
    """OpportunityStage rows keyed by the value stored in Opportunity.StageName."""
    if stages is None or stages.empty:
        return None
    key = pd.Series(pd.NA, index=stages.index, dtype=STR)
    for col in ("MasterLabel", "ApiName"):  # ApiName wins: it is what StageName stores
        if col in stages.columns:
            key = as_text(stages[col]).fillna(key)
    meta = pd.DataFrame({"stage": key})
    for col, kind in (("IsClosed", "bool"), ("IsWon", "bool"), ("IsActive", "bool"),
                      ("SortOrder", "float"), ("DefaultProbability", "percent"),
                      ("ForecastCategoryName", "forecast")):
        meta[col] = (parse_column(stages[col], kind, notes=notes, where="OpportunityStage",
                                  sf_field=col)
                     if col in stages.columns else pd.NA)
    meta = meta.dropna(subset=["stage"]).drop_duplicates("stage", keep="last")
    return meta.sort_values("SortOrder", kind="stable").reset_index(drop=True)


def _check_stage_map(meta: pd.DataFrame, stage_map: StageMap) -> list[str]:
    """Warnings where the stage map contradicts Salesforce's own closed / won flags."""
    out = []
    for row in meta.itertuples(index=False):  # a handful of stages, not records
        common = stage_map.lookup(row.stage)
        if common is None or pd.isna(row.IsClosed):
            continue
        closed, won = bool(row.IsClosed), bool(row.IsWon) if not pd.isna(row.IsWon) else False
        map_closed, map_won = stage_outcome(common)
        if closed != map_closed or (closed and won != map_won):
            kind = "closed won" if closed and won else "closed lost" if closed else "open"
            out.append(
                f"stage map maps Salesforce stage {row.stage!r} to {common!r}, but Salesforce "
                f"says the stage is {kind}; is_closed / is_won follow Salesforce"
            )
    return out


def _metadata_unmapped(meta: pd.DataFrame, stage_map: StageMap) -> list[str]:
    active = meta[meta["IsActive"].fillna(True).astype(bool)]
    return [str(s) for s in active["stage"] if stage_map.lookup(s) is None]


def stage_metadata_report(
    stages: pd.DataFrame | None, stage_map: StageMap
) -> tuple[list[str], list[str]]:
    """(active stages the map lacks, warnings where the map contradicts closed / won flags)."""
    notes = _Notes()
    meta = _stage_metadata(stages, notes)
    if meta is None:
        return [], notes.warnings
    return _metadata_unmapped(meta, stage_map), _check_stage_map(meta, stage_map) + notes.warnings


#: a Salesforce record id: 15 case-sensitive or 18 case-insensitive alphanumeric characters
SALESFORCE_ID = r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?"


def build_snapshot(
    raw: RawOrg, opts: SalesforceFieldOptions, facts: PullFacts, *, tz: str = "UTC",
) -> Snapshot:
    """Map raw org records into a validated Snapshot (the one place mapping happens)."""
    notes = _Notes()
    rejected: list[RejectedRow] = []
    stage_map = StageMap.build("salesforce", opts.stage_map, name="source.stage_map")
    w_opp = raw.where.get("opportunities", "Opportunity")
    # the index holds each record's position in its file / pull (rows filtered out before,
    # e.g. deleted ones, keep their numbers), used to name rejected rows
    position = raw.opportunities.index.to_numpy()
    src = raw.opportunities.reset_index(drop=True)
    for required in ("Id", "StageName"):
        if required not in src.columns:
            raise SourceDataError(f"{w_opp}: required field {required} is missing")

    # -- rows that cannot be used at all
    ids = parse_column(src["Id"], "id")
    no_id = ids.isna()
    dup = ids.duplicated(keep="first") & ~no_id
    for i in src.index[no_id | dup]:  # rejected rows are rare; a loop over them is fine
        reason = "no Id" if no_id[i] else f"duplicate Id {ids[i]}"
        unit = "line" if raw.row_base == 2 else "record"
        rejected.append(RejectedRow(f"{w_opp} {unit} {position[i] + raw.row_base}", reason))
    keep = ~(no_id | dup)
    src, ids = src[keep].reset_index(drop=True), ids[keep].reset_index(drop=True)

    warnings = list(facts.warnings)
    accounts = raw.accounts
    if accounts is not None and not {"Id", "Name"} <= set(accounts.columns):
        warnings.append(f"{raw.where.get('accounts', 'Account')}: no Id and Name columns; "
                        "account names not read")
        accounts = None
    if "Account.Name" not in src.columns and "AccountId" in src:
        account_ids = parse_column(src["AccountId"], "id")
        w_acc = raw.where.get("accounts", "Account")
        if accounts is not None:
            names = accounts.assign(Id=parse_column(accounts["Id"], "id"))
            names = names.dropna(subset=["Id"]).drop_duplicates("Id").set_index("Id")["Name"]
            src["Account.Name"] = account_ids.map(names)
            lost = account_ids.notna() & src["Account.Name"].isna()
            if lost.any():
                warnings.append(
                    f"{w_acc}: {int(lost.sum())} opportunities have an AccountId that is not "
                    f"in the file (e.g. {account_ids[lost].iloc[0]}); their account names are "
                    "unknown")
        elif raw.accounts is None and account_ids.notna().any():
            warnings.append(
                f"no {w_acc} and no Account.Name column: the account names of "
                f"{int(account_ids.notna().sum())} opportunities are unknown (reports show "
                f"account ids; duplicate checks by account name cannot run); add {w_acc} (Id, "
                "Name) to the export")

    specs = opportunity_specs(opts)
    opp, provided = _parse_frame(src, specs, tz=tz, notes=notes, where=w_opp, ids=ids,
                                 day_first=raw.day_first.get("opportunities"))
    opp["source"] = facts.source
    provided.add("source")
    if facts.instance_url:
        # a link only from an id of Salesforce's shape: an export's Id column is untrusted text
        # and would otherwise be pasted into the URL of every report
        valid = opp["id"].str.fullmatch(SALESFORCE_ID).fillna(False).astype(bool)
        base = facts.instance_url.rstrip("/") + "/lightning/r/Opportunity/"
        opp["url"] = (base + opp["id"] + "/view").where(valid)
        provided.add("url")
        if not valid.all():
            warnings.append(
                f"{w_opp}: {int((~valid).sum())} Id values are not 15- or 18-character "
                f"Salesforce ids (e.g. {str(opp['id'][~valid].iloc[0])[:40]!r}); those "
                "opportunities have no record link")
    if "currency" not in opp and opts.currency:
        opp["currency"] = opts.currency
        provided.add("currency")

    if "probability" in opp:  # a percentage outside 0..100 is a data error, not a 0..1 value
        bad = (opp["probability"] < 0) | (opp["probability"] > 1)
        notes.bad_values(w_opp, "Probability", "a percentage from 0 to 100",
                         src["Probability"], bad.fillna(False).astype(bool), ids)
        opp["probability"] = opp["probability"].mask(bad)

    opp["stage"], unmapped = stage_map.map_series(opp["source_stage"])
    provided.add("stage")

    # -- closed / won as Salesforce says: the record's own flags, else its stage's metadata.
    # Where Salesforce says nothing they stay NA and the Snapshot validator decides from the
    # mapped stage (auditor/lifecycle.py), which also warns, with counts, where they disagree.
    meta_stages = _stage_metadata(raw.stages, notes)
    for flag, col in (("IsClosed", "is_closed"), ("IsWon", "is_won")):
        cur = opp[col] if col in opp else pd.Series(pd.NA, index=opp.index, dtype="boolean")
        if meta_stages is not None:
            lookup = meta_stages.set_index("stage")[flag]
            cur = cur.fillna(opp["source_stage"].map(lookup).astype("boolean"))
        opp[col] = cur
        provided.add(col)
    if meta_stages is not None:
        for s in _metadata_unmapped(meta_stages, stage_map):
            unmapped.setdefault(s, 0)

    # -- stage history
    history = make_stage_history()
    if raw.history is not None:
        history, entered, changes, hist_unmapped = _history(
            raw.history, opp, stage_map, tz=tz, notes=notes,
            where=raw.where.get("history", "OpportunityHistory"),
            day_first=raw.day_first.get("history"),
        )
        # reindex, not map: map() turns an empty datetime mapper into float64 (an incremental
        # pull may bring no history row in any record's current stage)
        entered = entered.astype("datetime64[us, UTC]").reindex(opp["id"].to_numpy())
        opp["stage_entered_at"] = entered.array
        opp["close_date_changes"] = opp["id"].map(changes).fillna(0).astype("Int64")
        provided |= {"stage_entered_at", "close_date_changes"}
        for s in hist_unmapped:
            unmapped.setdefault(s, 0)

    for s, n in sorted(unmapped.items()):
        where = f"used by {n} opportunit{'y' if n == 1 else 'ies'}" if n else (
            "not used by any current opportunity")
        warnings.append(
            f"Salesforce stage {s!r} is not in the stage map ({where}); add it to "
            f"source.stage_map"
        )

    owners = make_owners()
    w_user = raw.where.get("users", "User")
    if raw.users is not None:
        if "Id" not in raw.users.columns:
            raise SourceDataError(f"{w_user}: required field Id is missing")
        uids = parse_column(raw.users["Id"], "id") if "Id" in raw.users else None
        user_rows = _user_names(raw.users.reset_index(drop=True), w_user, warnings)
        users, _ = _parse_frame(user_rows, user_specs(opts), tz=tz,
                                notes=notes, where=w_user, ids=uids)
        owners = make_owners(users.dropna(subset=["id"]).drop_duplicates("id"))
    if "Owner.Name" in src.columns and "owner_id" in opp:  # an export may lack OwnerId
        # owners the User query / file lacks: name from the opportunity, the rest unknown
        seen = pd.DataFrame({"id": opp["owner_id"], "name": as_text(src["Owner.Name"])})
        seen = seen.dropna(subset=["id"]).drop_duplicates("id")
        extra_owners = seen[~isin(seen["id"], owners["id"])]
        if len(extra_owners):
            owners = make_owners(pd.concat([owners, extra_owners], ignore_index=True))
            if raw.users is not None:
                warnings.append(
                    f"{len(extra_owners)} opportunity owner(s) not among the users read (e.g. "
                    f"{extra_owners['id'].iloc[0]}); their names come from the opportunities, "
                    "their active flag and manager are unknown")
    if raw.users is None and "Owner.Name" not in src.columns and "owner_id" in opp:
        n_owners = opp["owner_id"].dropna().nunique()
        if n_owners:
            warnings.append(
                f"no {w_user} and no Owner.Name column: {n_owners} owners are shown by their "
                f"ids; add {w_user} (Id, Name or FirstName + LastName) to the export")
    if (raw.users is not None or len(owners)) and "owner_id" in opp:
        missing = opp["owner_id"].dropna()
        missing = missing[~isin(missing, owners["id"])].unique()
        if len(missing):
            warnings.append(
                f"{len(missing)} opportunity owner(s) not found among users (e.g. {missing[0]})"
            )

    out = make_opportunities(opp)
    reached, expectations = _pipeline_facts(meta_stages, stage_map, out, history)
    extra = dict(facts.extra)
    if meta_stages is not None:
        extra["stage_metadata"] = [
            {"stage": str(r.stage), "order": None if pd.isna(r.SortOrder) else int(r.SortOrder),
             "is_closed": _b(r.IsClosed), "is_won": _b(r.IsWon), "active": _b(r.IsActive),
             "common_stage": stage_map.lookup(r.stage)}
            for r in meta_stages.itertuples(index=False)
        ]
    if notes.unreadable:
        extra["unreadable"] = notes.unreadable
    meta = SnapshotMeta(
        source=facts.source,
        source_type=facts.source_type,
        provided_fields=frozenset(provided),
        has_stage_history=raw.history is not None,
        reached_stages=reached,
        stage_expectations=expectations,
        api_calls=facts.api_calls,
        api_usage=facts.api_usage,
        unmapped_stages=dict(sorted(unmapped.items())),
        rejected=rejected,
        warnings=warnings + notes.warnings,
        loaded_rows=len(out),
        incremental=facts.incremental,
        deleted_ids=sorted(raw.deleted_ids),
        unreadable_fields=dict(facts.unreadable_fields),
        stream_state=dict(facts.stream_state),
        extra=extra,
    )
    return Snapshot(out, history, owners, meta).validate()


def _user_names(users: pd.DataFrame, where: str, warnings: list[str]) -> pd.DataFrame:
    """A Name for each user: the weekly export's User.csv has FirstName / LastName, no Name."""
    if "Name" in users.columns:
        return users
    parts = [c for c in ("FirstName", "LastName") if c in users.columns]
    if not parts:
        warnings.append(f"{where}: no Name, FirstName or LastName column; owners are shown by "
                        "their ids")
        return users
    name = as_text(users[parts[0]]).fillna("")
    for col in parts[1:]:
        name = name + " " + as_text(users[col]).fillna("")
    name = name.str.strip()
    return users.assign(Name=name.where(name.str.len() > 0))


def _pipeline_facts(
    meta: pd.DataFrame | None, stage_map: StageMap, opp: pd.DataFrame, history: pd.DataFrame,
) -> tuple[frozenset[str], dict[str, dict[str, Any]]]:
    """(common stages the org's pipeline uses, each stage's own expectation for CD03).

    With OpportunityStage metadata: its active stages, mapped, and their DefaultProbability /
    ForecastCategoryName. Without: the stages the records and history hold (never the shipped
    map's stages, which a custom org does not use) and Salesforce's stock expectations for
    stock stage names.
    """
    if meta is not None:
        active = meta[meta["IsActive"].fillna(True).astype(bool)]
        reached = {stage_map.lookup(s) for s in active["stage"]}
        expectations: dict[str, dict[str, Any]] = {}
        for row in meta.itertuples(index=False):  # a handful of stages
            exp = {}
            if not pd.isna(row.DefaultProbability):
                exp["probability"] = float(row.DefaultProbability)
            if not pd.isna(row.ForecastCategoryName):
                exp["forecast_category"] = str(row.ForecastCategoryName)
            if exp:
                expectations[str(row.stage)] = exp
    else:
        used = pd.concat([opp["source_stage"], history["source_stage"]]).dropna().unique()
        reached = {stage_map.lookup(s) for s in used}
        expectations = {
            str(s): {"probability": p, "forecast_category": c}
            for s in used
            for name, (p, c) in STOCK_STAGE_EXPECTATIONS.items()
            if str(s).casefold() == name.casefold()
        }
    used_common = set(opp["stage"].dropna().astype(str)) | set(
        history["stage"].dropna().astype(str))
    return frozenset((reached - {None}) | used_common), expectations


def _b(v: Any) -> bool | None:
    return None if pd.isna(v) else bool(v)


def _history(
    raw: pd.DataFrame, opp: pd.DataFrame, stage_map: StageMap, *, tz: str, notes: _Notes,
    where: str, day_first: bool | None = None,
) -> tuple[pd.DataFrame, pd.Series, pd.Series, list[str]]:
    """Stage path, current-stage entry time and close-date change counts from history rows."""
    for required in ("OpportunityId", "StageName", "CreatedDate"):
        if required not in raw.columns:
            raise SourceDataError(f"{where}: required field {required} is missing")
    h = pd.DataFrame({
        "opp": parse_column(raw["OpportunityId"], "id"),
        "hid": parse_column(raw["Id"], "id") if "Id" in raw else pd.NA,
        "stage": parse_column(raw["StageName"], "text"),
        "at": parse_column(raw["CreatedDate"], "datetime", tz=tz, notes=notes, where=where,
                           sf_field="CreatedDate", day_first=day_first),
    })
    for col in ("CloseDate", "PrevCloseDate"):
        h[col] = (parse_column(raw[col], "date", notes=notes, where=where, sf_field=col,
                               day_first=day_first)
                  if col in raw else pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us]"))
    # history of opportunities outside this pull (deleted, filtered) would only confuse rules
    h = h[isin(h["opp"], opp["id"]) & h["at"].notna()]
    h = h.sort_values(["opp", "at", "hid"], kind="stable").reset_index(drop=True)
    first = h["opp"].ne(h["opp"].shift())

    # a stage entry = first row of an opportunity or a row whose stage differs from the previous
    stage_prev = h["stage"].shift()
    changed = first | ~h["stage"].eq(stage_prev).fillna(False)
    entries = h[changed & h["stage"].notna()]
    mapped, unmapped = stage_map.map_series(entries["stage"])
    history = make_stage_history(pd.DataFrame({
        "opportunity_id": entries["opp"], "stage": mapped, "source_stage": entries["stage"],
        "entered_at": entries["at"],
    }))
    current = entries["opp"].map(opp.set_index("id")["source_stage"])
    in_current = entries[entries["stage"].eq(current).fillna(False)]
    entered = in_current.groupby("opp")["at"].max()

    # close-date push: differs from the previous row, or from the row's own PrevCloseDate
    def differs(a: pd.Series, b: pd.Series) -> pd.Series:
        return ~(a.eq(b).fillna(False) | (a.isna() & b.isna()))

    moved = (~first & differs(h["CloseDate"], h["CloseDate"].shift())) | (
        h["PrevCloseDate"].notna() & differs(h["CloseDate"], h["PrevCloseDate"]))
    changes = moved.groupby(h["opp"]).sum()
    return history, entered, changes, sorted(unmapped)


def flatten_records(records: list[Mapping[str, Any]], fields: list[str]) -> pd.DataFrame:
    """REST JSON records → one frame with exactly ``fields`` as columns.

    Relationship fields (``Account.Name``) are read through the nested objects; a null
    relationship gives NA. Columns are fixed by the query, not by what a page happens to
    contain. One list per field (``pd.json_normalize`` flattened every record into a dict first,
    six times slower); values stay as JSON gave them, so an integral number reads "50", never
    "50.0", whatever the other rows hold.
    """
    if not records:
        return pd.DataFrame({f: pd.Series(dtype=object) for f in fields})
    cols: dict[str, list[Any]] = {}
    for f in fields:
        if "." not in f:
            cols[f] = [r.get(f) for r in records]
            continue
        path = f.split(".")
        values = []
        for r in records:
            cur: Any = r
            for part in path:
                cur = cur.get(part) if isinstance(cur, Mapping) else None
            values.append(cur)
        cols[f] = values
    return pd.DataFrame(cols, dtype=object)
