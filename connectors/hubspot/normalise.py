"""Raw HubSpot deal records → Snapshot; shared by the API and the UI-export connectors.

Both paths first bring their input into :class:`RawDeals` (property name → string value, one
row per deal, plus optional property history), so the same deals give the same Snapshot
whichever way they arrived.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from auditor.snapshot import (
    STR,
    TS,
    ApiUsage,
    RejectedRow,
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_stage_history,
)
from auditor.stages import STAGE_DTYPE, StageMap
from connectors.hubspot.fields import DATE_ENTERED_PREFIX, FieldOptions, Kind
from connectors.hubspot.pipelines import resolve_stages
from connectors.hubspot.values import convert, parse_dates, parse_timestamps

log = logging.getLogger(__name__)

RECORD_URL = "https://app.hubspot.com/contacts/{portal_id}/record/0-3/"

#: Columns every HubSpot deal has (the record id, and what the pipelines' stages give).
ALWAYS_PROVIDED = frozenset({"id", "source", "pipeline", "stage", "source_stage",
                             "is_closed", "is_won"})


@dataclass
class RawDeals:
    """Deals as HubSpot properties: ``props`` has ``id`` plus one column per property (strings
    or NA); ``history`` is long (``deal_id, property, value, timestamp``) when property history
    was pulled; ``present`` holds the properties the portal really returned."""

    props: pd.DataFrame
    present: frozenset[str]
    history: pd.DataFrame | None = None
    rejected: list[RejectedRow] = field(default_factory=list)
    #: (property, column, kind) beyond the configured ones, e.g. the export's association columns
    extra_columns: list[tuple[str, str, Kind]] = field(default_factory=list)


@dataclass
class PullContext:
    source: str
    source_type: str
    portal_id: int | None
    portal_tz: str
    #: zone for timestamps written without one (UI exports); the API always sends UTC
    naive_tz: str = "UTC"
    api_calls: int = 0
    api_usage: ApiUsage | None = None
    incremental: bool = False
    warnings: list[str] = field(default_factory=list)
    deleted_ids: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    #: the stream state after this pull (see connectors.streams)
    stream_state: dict[str, str] = field(default_factory=dict)


def _warn(ctx: PullContext, msg: str) -> None:
    log.warning("%s: %s", ctx.source, msg)
    ctx.warnings.append(msg)


def _bad_value_warning(ids: pd.Series, raw: pd.Series, bad: pd.Series, prop: str, kind: str) -> str:
    first = bad.idxmax()
    return (f"{int(bad.sum())} deal(s) have a `{prop}` value that is not a valid {kind} "
            f"(e.g. deal {ids[first]}: {raw[first]!r}); treated as missing")


def _id_order(ids: pd.Series) -> pd.Series:
    """Numeric ids in numeric order (HubSpot ids are digits), others after, by text."""
    return pd.DataFrame({"n": ids.str.len(), "s": ids}).sort_values(["n", "s"]).index.to_series()


def _stage_frame(cat: pd.DataFrame, pos: pd.Series) -> pd.DataFrame:
    """Catalogue rows for each position (NA position → all-NA row)."""
    padded = pd.concat([cat, cat.iloc[:0].reindex([len(cat)])], ignore_index=True)
    take = pos.fillna(len(cat)).astype(int).to_numpy()
    return padded.iloc[take].set_index(pos.index)


def _history_rows(raw: RawDeals, prop: str, naive_tz: str,
                  day_tz: str | None = None) -> pd.DataFrame:
    """One property's history, ordered by time, consecutive duplicates collapsed.

    With ``day_tz`` the values are dates compared as calendar days in that zone: HubSpot
    stores the moment a close date was picked, so a re-save at another time of day is the same
    date, not a change."""
    h = raw.history
    if h is None or h.empty:
        return pd.DataFrame({"deal_id": pd.Series(dtype=STR), "value": pd.Series(dtype=STR),
                             "at": pd.Series(dtype="datetime64[us, UTC]")})
    h = h[h["property"] == prop]
    at, _ = parse_timestamps(h["timestamp"], naive_tz)
    value = h["value"].astype(STR).str.strip()
    value = value.where(value != "")
    if day_tz is not None:
        days, _ = parse_dates(value, day_tz)
        value = days.dt.strftime("%Y-%m-%d").astype(STR).fillna(value)
    out = pd.DataFrame({"deal_id": h["deal_id"].astype(STR), "value": value, "at": at})
    out = out.dropna(subset=["value", "at"]).sort_values(["deal_id", "at"], kind="stable")
    changed = (out["value"] != out.groupby("deal_id")["value"].shift()).fillna(True)
    return out[changed.astype(bool)].reset_index(drop=True)


def normalise(
    raw: RawDeals,
    cat: pd.DataFrame,
    owners: pd.DataFrame,
    opts: FieldOptions,
    stage_map: StageMap,
    ctx: PullContext,
    *,
    full_history: bool = False,
) -> Snapshot:
    """Build the Snapshot. ``cat`` is a mapped stage catalogue (see ``pipelines``)."""
    props = raw.props.reset_index(drop=True)
    props = props.loc[_id_order(props["id"].astype(STR))].reset_index(drop=True)
    ids = props["id"].astype(STR)
    present = set(raw.present)
    provided = set(ALWAYS_PROVIDED)

    def col(name: str) -> pd.Series:
        if name in props.columns:
            return props[name]
        return pd.Series(pd.NA, index=props.index, dtype=STR)

    # -- stage and pipeline, through the catalogue ----------------------------------------
    stage_value = col("dealstage").astype(STR)
    pipeline_value = col("pipeline").astype(STR)
    pos = resolve_stages(cat, stage_value, pipeline_value)
    st = _stage_frame(cat, pos)
    direct, _ = stage_map.map_series(stage_value)  # stages missing from the pipelines
    common = st["common"].astype(STAGE_DTYPE).fillna(direct)
    source_stage = st["stage_label"].astype(STR).fillna(stage_value)
    pipe_labels = dict(zip(cat["pipeline_id"], cat["pipeline_label"], strict=True))
    pipeline = pipeline_value.map(pipe_labels).astype(STR).fillna(pipeline_value)
    pipeline = pipeline.fillna(st["pipeline_label"].astype(STR))

    unmapped_mask = common.isna() & source_stage.notna()
    unmapped = {str(k): int(v) for k, v in source_stage[unmapped_mask].value_counts().items()}
    for stage, n in sorted(unmapped.items()):
        _warn(ctx, f"stage {stage!r} is not in the stage map; {n} deal(s) are in it "
                   f"(add it to source.stage_map)")

    data: dict[str, pd.Series] = {
        "id": ids,
        "source": pd.Series(ctx.source, index=props.index, dtype=STR),
        "pipeline": pipeline,
        "stage": common,
        "source_stage": source_stage,
    }
    if ctx.portal_id is not None:
        data["url"] = RECORD_URL.format(portal_id=ctx.portal_id) + ids
        provided.add("url")

    # -- mapped properties (data-driven, see fields.py) -----------------------------------
    for prop, column, kind in [*opts.columns(), *raw.extra_columns]:
        if prop not in props.columns:
            continue
        values, bad = convert(props[prop], kind, portal_tz=ctx.portal_tz, naive_tz=ctx.naive_tz)
        if column == "probability":  # a probability outside 0..1 is a data error
            out_of_range = ((values < 0) | (values > 1)).fillna(False).astype(bool)
            values, bad = values.mask(out_of_range), bad | out_of_range
            kind = "probability from 0 to 1"
        if bad.any():
            _warn(ctx, _bad_value_warning(ids, props[prop], bad, prop, kind))
            ctx.extra.setdefault("unreadable", {})[prop] = {
                "kind": kind, "bad": int(bad.sum()), "of": int(props[prop].notna().sum()),
                "example": str(props[prop][bad].iloc[0])}
        data[column] = values
        if prop in present:
            provided.add(column)

    # -- closed / won / probability: property first, then stage metadata, then common stage
    # (where HubSpot says nothing the Snapshot validator decides from the common stage)
    meta_closed = st["is_closed"].astype("boolean")
    meta_won = meta_closed & (st["probability"].astype("Float64") >= 1.0)
    meta_won = meta_won.where(meta_closed.notna())
    data["is_closed"] = (data.get("is_closed", pd.Series(pd.NA, index=props.index, dtype="boolean"))
                         .fillna(meta_closed))
    data["is_won"] = (data.get("is_won", pd.Series(pd.NA, index=props.index, dtype="boolean"))
                      .fillna(meta_won))
    prob = data.get("probability", pd.Series(pd.NA, index=props.index, dtype="Float64"))
    data["probability"] = prob.fillna(st["probability"].astype("Float64"))
    if data["probability"].notna().any() or st["probability"].notna().any():
        provided.add("probability")
    if opts.default_currency:
        cur = data.get("currency", pd.Series(pd.NA, index=props.index, dtype=STR))
        data["currency"] = cur.fillna(opts.default_currency)
        provided.add("currency")

    # -- stage history ---------------------------------------------------------------------
    history, has_history = _stage_history(raw, props, cat, stage_map, ctx, full_history)
    if has_history:
        provided.add("stage_entered_at")
        cur = pd.DataFrame({"opportunity_id": ids, "cur": pos})
        h = history.merge(cur, on="opportunity_id", how="inner")
        h = h[(h["_pos"].astype("Int64") == h["cur"]).fillna(False).astype(bool)]
        entered = h.groupby("opportunity_id")["entered_at"].max()
        # an empty map would make pandas cast the no-deal result to float (a TypeError)
        data["stage_entered_at"] = (ids.map(entered) if len(entered)
                                    else pd.Series(pd.NaT, index=ids.index, dtype=TS))
    if full_history:
        changes = _history_rows(raw, "closedate", ctx.naive_tz,
                                day_tz=ctx.portal_tz).groupby("deal_id").size()
        data["close_date_changes"] = (ids.map(changes).fillna(1).astype("Int64") - 1).clip(lower=0)
        provided.add("close_date_changes")
    history = history.drop(columns=["_pos"])

    opportunities = make_opportunities(pd.DataFrame(data))
    meta = SnapshotMeta(
        source=ctx.source,
        source_type=ctx.source_type,
        provided_fields=frozenset(provided),
        has_stage_history=has_history,
        reached_stages=_reached(cat, common),
        stage_expectations=_expectations(cat),
        api_calls=ctx.api_calls,
        api_usage=ctx.api_usage,
        unmapped_stages=unmapped,
        rejected=list(raw.rejected),
        warnings=list(ctx.warnings),
        loaded_rows=len(opportunities),
        incremental=ctx.incremental,
        deleted_ids=list(ctx.deleted_ids),
        stream_state=dict(ctx.stream_state),
        extra=dict(ctx.extra),
    )
    return Snapshot(opportunities, make_stage_history(history), owners, meta).validate()


def _expectations(cat: pd.DataFrame) -> dict[str, dict[str, float]]:
    """The pipelines' own probability per stage (by id and by label), for rule CD03."""
    out: dict[str, dict[str, float]] = {}
    known = cat[cat["probability"].notna()]
    for sid, label, p in zip(known["stage_id"], known["stage_label"], known["probability"],
                             strict=True):  # a handful of pipeline stages, not deals
        for key in (sid, label):
            if pd.notna(key):
                out[str(key)] = {"probability": float(p)}
    return out


def _reached(cat: pd.DataFrame, common: pd.Series) -> frozenset[str]:
    """Common stages the portal's pipelines reach (plus stages deals sit in outside them)."""
    stages = set(cat["common"].dropna().astype(str)) | set(common.dropna().astype(str))
    return frozenset(stages)


def _stage_history(
    raw: RawDeals,
    props: pd.DataFrame,
    cat: pd.DataFrame,
    stage_map: StageMap,
    ctx: PullContext,
    full_history: bool,
) -> tuple[pd.DataFrame, bool]:
    """Stage-history rows (with the catalogue position in ``_pos``) and whether any was pulled."""
    ids = props["id"].astype(STR)
    pipeline_of = dict(zip(ids, props.get("pipeline", pd.Series(pd.NA, index=props.index)),
                           strict=True))
    if full_history:
        rows = _history_rows(raw, "dealstage", ctx.naive_tz)
        frame = pd.DataFrame({"opportunity_id": rows["deal_id"], "value": rows["value"],
                              "entered_at": rows["at"]})
        has = True
    else:
        cols = [c for c in props.columns if c.startswith(DATE_ENTERED_PREFIX)]
        has = bool(cols) and any(c in raw.present for c in cols)
        long = props[["id", *cols]].melt(id_vars="id", var_name="prop", value_name="raw")
        long = long.dropna(subset=["raw"])
        at, bad = parse_timestamps(long["raw"], ctx.naive_tz)
        if bad.any():
            _warn(ctx, _bad_value_warning(long["id"].astype(STR), long["raw"], bad,
                                          "hs_v2_date_entered_*", "ts"))
        frame = pd.DataFrame({"opportunity_id": long["id"].astype(STR),
                              "value": long["prop"].str.slice(len(DATE_ENTERED_PREFIX)),
                              "entered_at": at}).dropna(subset=["entered_at"])
    pipeline = frame["opportunity_id"].map(pipeline_of).astype(STR)
    pos = resolve_stages(cat, frame["value"].astype(STR), pipeline)
    st = _stage_frame(cat, pos)
    direct, _ = stage_map.map_series(frame["value"].astype(STR))
    order = pd.Series(range(len(ids)), index=ids)
    out = pd.DataFrame({
        "opportunity_id": frame["opportunity_id"].astype(STR),
        "stage": st["common"].astype(STAGE_DTYPE).fillna(direct),
        "source_stage": st["stage_label"].astype(STR).fillna(frame["value"].astype(STR)),
        "entered_at": frame["entered_at"],
        "_pos": pos,
        "_order": frame["opportunity_id"].map(order),
    })
    out = out.sort_values(["_order", "entered_at"], kind="stable").drop(columns="_order")
    return out.reset_index(drop=True), has
