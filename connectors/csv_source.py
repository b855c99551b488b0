"""Generic CSV connector: opportunities CSV plus optional stage-history and owners CSVs.

Column mapping and stage map come from config (DATA, see :mod:`connectors.csv_options`);
parsing is vectorized (:mod:`connectors.csv_parsing`). A row that cannot be used is rejected
with "file row N" and the reason, counted in ``meta.rejected``; the remaining rows are audited.
A problem that makes a whole file unusable (missing mapped column, unknown date order) is a
:class:`~auditor.errors.SourceDataError` naming the file, column and what was found.
"""

from __future__ import annotations

import string
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from auditor.errors import ConfigError, SourceDataError
from auditor.snapshot import (
    DATE,
    OPPORTUNITY_SCHEMA,
    OWNER_SCHEMA,
    STR,
    TS,
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_owners,
    make_stage_history,
)
from auditor.stages import STAGE_DTYPE, StageMap
from connectors.base import Connector, SourceOptions
from connectors.csv_options import CsvLookup, CsvOptions
from connectors.csv_parsing import (
    DateOrderUnknown,
    parse_amounts,
    parse_bools,
    parse_dates,
    parse_numbers,
)
from connectors.csv_reading import CsvTable, Rejections, quoted, read_table
from connectors.currency import configured_rates, convert
from connectors.file_dates import decide_order, order_basis, why_not
from connectors.local_files import contained

_FORECAST = {
    "omitted": "omitted",
    "pipeline": "pipeline",
    "bestcase": "best_case",
    "upside": "best_case",
    "commit": "commit",
    "forecast": "commit",
    "closed": "closed",
    # UI labels: HubSpot's "Not forecasted" / "Closed won", Dynamics 365's Committed / Won / Lost
    "notforecasted": "omitted",
    "closedwon": "closed",
    "committed": "commit",
    "won": "closed",
    "lost": "omitted",
}


class CsvConnector(Connector):
    """Reads CSV exports (any CRM, or a consultant's client files)."""

    type_name: ClassVar[str] = "csv"
    #: the files are read whole on every run (``since`` is ignored)
    pulls_incrementally: ClassVar[bool] = False
    Options: ClassVar[type[SourceOptions]] = CsvOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: per file label: slash dates day first (True), month first (False), none (None)
        self._day_first: dict[str, bool | None] = {}
        self._unreadable: dict[str, dict[str, Any]] = {}

    @property
    def opts(self) -> CsvOptions:
        assert isinstance(self.options, CsvOptions)
        return self.options

    # -- public -----------------------------------------------------------------------------

    def pull(self, since: datetime | None = None) -> Snapshot:
        """Read the files in full (CSV has no incremental mode; ``since`` is ignored)."""
        o = self.opts
        self._day_first, self._unreadable = {}, {}
        stage_map = StageMap.build(o.stage_map_default, o.stage_map, name="source.stage_map")
        if not stage_map.mapping:
            raise ConfigError(
                "source: no stage map, so no stage could be understood; set "
                "`source.stage_map_default` (\"salesforce\" or \"hubspot\") and/or "
                "`source.stage_map` (source stage = common stage)"
            )
        meta = SnapshotMeta(
            source=self.source_name,
            source_type=self.type_name,
            reached_stages=stage_map.reached,
            has_stage_history=o.stage_history is not None,
        )
        opps, provided = self._opportunities(stage_map, meta)
        self.progress(o.opportunities.name, len(opps), 1)
        history = make_stage_history()
        if o.stage_history is not None:
            history = self._history(stage_map, opps, meta)
            if "stage_entered_at" not in provided:
                opps["stage_entered_at"] = _entered_current_stage(opps, history)
                provided.add("stage_entered_at")
        owners = self._owners(opps, meta)
        # the stages this export's pipeline uses are the ones its data holds (a CSV has no
        # picklist): the shipped default map's other stages are not part of it
        meta.reached_stages = frozenset(
            set(opps["stage"].dropna().astype(str)) | set(history["stage"].dropna().astype(str))
        )
        meta.provided_fields = frozenset(provided)
        meta.loaded_rows = len(opps)
        if self._unreadable:
            meta.extra["unreadable"] = dict(self._unreadable)
        snap = Snapshot(opps, history, owners, meta).validate()
        rates = configured_rates(o.corporate_currency, o.conversion_rates)
        return convert(snap, rates, where=o.opportunities.name)

    def check(self) -> dict[str, Any]:
        snap = self.pull()
        m = snap.meta
        return {
            "opportunities": m.loaded_rows,
            "rejected_rows": len(m.rejected),
            "unmapped_stages": m.unmapped_stages,
            "owners": len(snap.owners),
            "stage_history_rows": len(snap.stage_history),
            "provided_fields": sorted(m.provided_fields),
        }

    # -- files --------------------------------------------------------------------------------

    def _read(self, path: Path, what: str, meta: SnapshotMeta) -> CsvTable:
        o = self.opts
        table = read_table(
            contained(self.resolve(path)), what=what, encoding=o.encoding, delimiter=o.delimiter,
            na_values=o.na_values, limits=o,
        )
        meta.warnings.extend(table.warnings)
        meta.extra.setdefault("encodings", {})[table.label] = table.encoding
        return table

    def _mapping(self, table: CsvTable, explicit: dict[str, str], schema_cols: set[str],
                 option: str) -> dict[str, pd.Series]:
        """Snapshot column → cells. Without an explicit mapping, same-named headers are used."""
        if explicit:
            return {col: table.column(h, f"{option}.{col}") for col, h in explicit.items()}
        return {h: table.frame[h] for h in table.headers if h in schema_cols}

    def _note_unreadable(self, table: CsvTable, header: str, kind: str, cells: pd.Series,
                         bad: pd.Series) -> None:
        """Values present but unreadable, per column (check-config reports the rates)."""
        if bad.any():
            self._unreadable[f"{table.label}: {header}"] = {
                "kind": kind, "bad": int(bad.sum()), "of": int(cells.notna().sum()),
                "example": str(cells[bad].iloc[0])}

    def _unreadable_hint(self) -> str:
        """For a file rejected whole: the setting to fix, for columns mostly unreadable."""
        fixes = {"amount": "set source.decimal / source.thousands to the file's number format",
                 "date": "set source.date_order (\"day_first\" / \"month_first\") or "
                         "source.date_format"}
        hints = [f"\n{where}: {u['bad']} of {u['of']} values cannot be read as {u['kind']}; "
                 f"{fixes[u['kind']]}"
                 for where, u in self._unreadable.items() if u["bad"] * 2 > u["of"]]
        return "".join(hints)

    def _decide_order(self, table: CsvTable, columns: dict[str, pd.Series]) -> None:
        """Day/month order of this file's slash dates (setting, else the file's evidence)."""
        o = self.opts
        if o.date_format:
            return
        self._day_first[table.label] = decide_order(
            columns, o.date_order, label=table.label, option="source.date_order")

    def _dates(self, table: CsvTable, cells: pd.Series, header: str, *, aware: bool,
               rej: Rejections) -> pd.Series:
        o = self.opts
        if table.label not in self._day_first:
            self._decide_order(table, {header: cells})
        day_first = self._day_first.get(table.label)
        try:
            out, bad = parse_dates(cells, fmt=o.date_format, dayfirst=day_first,
                                   tz=o.timezone, aware=aware)
        except DateOrderUnknown as exc:  # pragma: no cover - the order is decided before
            raise SourceDataError(
                f"{table.where(int(exc.index))}, column {header!r}: date {exc.value!r} could be "
                f"day/month or month/day; set `source.date_order`"
            ) from None
        what = "a date and time" if aware else "a date"
        fmt = f" with format {o.date_format!r}" if o.date_format else ""
        self._note_unreadable(table, header, "date", cells, bad)
        why = why_not(cells, day_first, order_basis(o.date_order, "source.date_order"))
        rej.add(bad, f"column {header}: cannot parse " + quoted(cells)
                + why.where(why != "", f" as {what}{fmt}"))
        return out

    # -- opportunities ------------------------------------------------------------------------

    def _opportunities(self, stage_map: StageMap,
                       meta: SnapshotMeta) -> tuple[pd.DataFrame, set[str]]:
        o = self.opts
        table = self._table = self._read(o.opportunities, "opportunities", meta)
        cols = self._mapping(table, o.columns, set(OPPORTUNITY_SCHEMA) - {"stage", "source"},
                             "source.columns")
        headers = dict(o.columns) or {c: c for c in cols}
        if not o.columns and "stage" in table.headers and "source_stage" not in cols:
            # an unmapped file's "stage" header holds the source's stage
            cols["source_stage"], headers["source_stage"] = table.frame["stage"], "stage"
        if o.id_template:
            cols["id"] = _render(o.id_template, table, "source.id_template", strict=True)
            headers["id"] = "id_template"
        status_stage = None
        if o.status_column:
            status = table.column(o.status_column, "source.status_column")
            status_stage = status.str.casefold().map(
                {k.casefold(): v for k, v in o.status_map.items()}).astype(STAGE_DTYPE)
            if "source_stage" not in cols:  # the status is all the stage there is
                cols["source_stage"], headers["source_stage"] = status, o.status_column
        for col, vocab in o.value_maps.items():
            if col in cols:
                cols[col] = _vocabulary(cols[col], vocab)
        for need in ("id", "source_stage"):
            if need not in cols:
                key = "id" if need == "id" else "stage"
                raise SourceDataError(
                    f"{table.label}: no column gives the opportunity {key}; map it with "
                    f"`source.columns.{key}` (headers found: {', '.join(table.headers)})"
                )
        extras = {n: table.column(h, f"source.extra_columns.{n}")
                  for n, h in o.extra_columns.items()}
        rej = Rejections(table)
        out: dict[str, pd.Series] = {}
        provided = set(cols) | {"source", "stage", "source_stage", "is_closed", "is_won"}

        ids = cols["id"]
        h = headers["id"]
        rej.add(ids.isna(), f"column {h}: the id is empty")
        dup = ids.notna() & ids.duplicated()
        if dup.any():
            first_rows = pd.Series(ids.index[~ids.duplicated()], index=ids[~ids.duplicated()])
            first = ids.map(first_rows).astype("Int64").astype(str)
            rej.add(dup, f"column {h}: duplicate id " + quoted(ids) + " (first on row "
                    + first + ")")
        out["id"] = ids

        raw_stage = cols["source_stage"]
        h = headers["source_stage"]
        stage, _ = stage_map.map_series(raw_stage)
        stage.index = raw_stage.index
        by_status = pd.Series(False, index=raw_stage.index)
        if status_stage is not None:  # won / lost from the status column, whatever the stage
            by_status = status_stage.notna()
            stage = stage.where(~by_status, status_stage).astype(STAGE_DTYPE)
            raw_stage = raw_stage.where(raw_stage.notna() | ~by_status, status)
        rej.add(raw_stage.isna(), f"column {h}: the stage is empty")
        unknown = raw_stage.notna() & stage.isna() & ~by_status
        if o.unknown_stage == "reject":
            rej.add(unknown, f"column {h}: stage " + quoted(raw_stage)
                    + " is not in the stage map")
        out["source_stage"], out["stage"] = raw_stage, stage

        special = {"id", "source_stage", "amount", "currency", "probability", "forecast_category"}
        self._decide_order(table, {headers[c]: cells for c, cells in cols.items()
                                   if OPPORTUNITY_SCHEMA.get(c) in (DATE, TS)})
        for col, cells in cols.items():
            if col not in special:
                out[col] = self._typed(table, cells, headers[col], OPPORTUNITY_SCHEMA[col], rej)

        self._money(cols, headers, out, rej, provided)
        if "probability" in cols:
            out["probability"] = self._probability(cols["probability"],
                                                   headers["probability"], rej)
        if "forecast_category" in cols:
            out["forecast_category"] = self._forecast(cols["forecast_category"],
                                                      headers["forecast_category"], table, meta)

        # is_closed / is_won: the export's own columns when mapped; the Snapshot validator
        # fills the rest from the mapped stage (auditor/lifecycle.py)

        if o.name_template:
            out["name"] = _render(o.name_template, table, "source.name_template")
            provided.add("name")
        if o.url_template:
            out["url"] = _render(o.url_template, table, "source.url_template", strict=True)
            provided.add("url")
        out["source"] = pd.Series(self.source_name, index=table.frame.index)

        keep = _record_rejections(table, rej, meta)
        n_rows, n_rej = len(table.frame), int((~keep).sum())
        if n_rows and (n_rej == n_rows or n_rej / n_rows > o.max_rejected_share):
            sample = "\n  ".join(f"{r.where}: {r.reason}" for r in meta.rejected[:5])
            raise SourceDataError(
                f"{table.label}: {n_rej} of {n_rows} rows rejected (more than "
                f"source.max_rejected_share = {o.max_rejected_share}); first reasons:\n  {sample}"
                + self._unreadable_hint()
            )

        kept_unknown = raw_stage[unknown & keep].value_counts()
        meta.unmapped_stages = {str(k): int(v) for k, v in kept_unknown.items()}
        for name, count in meta.unmapped_stages.items():
            meta.warnings.append(
                f"{table.label}: stage {name!r} ({count} records) is not in the stage map; "
                f"add it to `source.stage_map`"
            )
        frame = pd.DataFrame(out)
        for name, cells in extras.items():
            frame[name] = cells.astype(STR)  # text, NA when empty (like Snapshot strings)
        frame = frame[keep]
        meta.extra["rows_read"] = {table.label: n_rows}
        for lookup in o.lookups:
            self._join(frame, lookup, meta)
        meta.extra["blank_rows"] = {table.label: table.blank_rows}
        return make_opportunities(frame), provided

    def _typed(self, table: CsvTable, cells: pd.Series, h: str, dtype: Any,
               rej: Rejections) -> pd.Series:
        """Parse one mapped column by its Snapshot dtype; failures become row rejections."""
        o = self.opts
        if dtype in (DATE, TS):
            return self._dates(table, cells, h, aware=dtype == TS, rej=rej)
        if dtype == "boolean":
            val, bad = parse_bools(cells, true_values=o.true_values, false_values=o.false_values)
            rej.add(bad, f"column {h}: cannot parse " + quoted(cells) + " as true/false")
            return val
        if dtype == "Int64":
            num, bad = parse_numbers(cells, decimal=o.decimal)
            bad |= num.notna() & ((num < 0) | (num % 1 != 0)).fillna(False)
            rej.add(bad, f"column {h}: cannot parse " + quoted(cells) + " as a whole number ≥ 0")
            return num.where(~bad).round().astype("Int64")
        return cells

    def _join(self, frame: pd.DataFrame, lookup: CsvLookup, meta: SnapshotMeta) -> None:
        """Add a lookup file's columns to ``frame`` (in place), matching ``on`` to ``key``."""
        table = self._read(lookup.file, "lookup", meta)
        keys = table.column(lookup.key, "source.lookups.key")
        take = {n: table.column(h, f"source.lookups.columns.{n}")
                for n, h in lookup.columns.items()}
        dup = keys.notna() & keys.duplicated()
        if dup.any():
            sample = ", ".join(repr(k) for k in keys[dup].drop_duplicates().head(3))
            meta.warnings.append(
                f"{table.label}: {int(dup.sum())} rows repeat a key in column {lookup.key} "
                f"(e.g. {sample}); the first row of each key is used"
            )
        first = keys.notna() & ~keys.duplicated()
        on = frame[lookup.on].astype(object)
        for name, cells in take.items():
            frame[name] = on.map(pd.Series(cells[first].values, index=keys[first].values))
            frame[name] = frame[name].astype(STR)
        unmatched = on.notna() & ~on.isin(keys[first])
        if unmatched.any():
            sample = ", ".join(repr(k) for k in on[unmatched].drop_duplicates().head(3))
            meta.warnings.append(
                f"{table.label}: {int(unmatched.sum())} opportunities have a value in "
                f"{lookup.on} that is not in column {lookup.key} (e.g. {sample}); their "
                f"{', '.join(lookup.columns)} stay empty"
            )
        meta.extra.setdefault("rows_read", {})[table.label] = len(table.frame)

    def _money(self, cols: dict[str, pd.Series], headers: dict[str, str],
               out: dict[str, pd.Series], rej: Rejections, provided: set[str]) -> None:
        o = self.opts
        index = cols["id"].index
        code = pd.Series(pd.NA, index=index, dtype="string")
        if "amount" in cols:
            cells, h = cols["amount"], headers["amount"]
            amount, code, bad = parse_amounts(cells, decimal=o.decimal, thousands=o.thousands)
            self._note_unreadable(self._table, h, "amount", cells, bad)
            sep = f"decimal separator {o.decimal!r}"
            rej.add(bad, f"column {h}: cannot parse " + quoted(cells) + f" as an amount ({sep})")
            out["amount"] = amount
        currency = code
        if "currency" in cols:
            given = cols["currency"].str.upper().astype("string")
            clash = (given.notna() & code.notna() & (given != code)).fillna(False)
            if clash.any():
                rej.add(clash, f"column {headers['amount']}: amount " + quoted(cols["amount"])
                        + " is in " + code.astype(str) + f" but column {headers['currency']} "
                        "says " + given.astype(str))
            currency = given.fillna(code)
        if o.currency:
            currency = currency.fillna(o.currency)
            provided.add("currency")
        if "amount" in cols or "currency" in cols:
            out["currency"] = currency

    def _probability(self, cells: pd.Series, h: str, rej: Rejections) -> pd.Series:
        num, bad = parse_numbers(cells, decimal=self.opts.decimal)
        rej.add(bad, f"column {h}: cannot parse " + quoted(cells) + " as a probability")
        pct = cells.str.endswith("%").fillna(False)
        percent = self.opts.probability_percent
        if percent is None:
            percent = bool((num[~pct] > 1).any())
        value = num.where(~(pct | percent), num / 100)
        out_of_range = ((value < 0) | (value > 1)).fillna(False)
        scale = "0..100" if percent else "0..1 (or 0..100%)"
        rej.add(out_of_range, f"column {h}: probability " + quoted(cells)
                + f" is outside {scale}")
        return value.where(~out_of_range)

    def _forecast(self, cells: pd.Series, h: str, table: CsvTable,
                  meta: SnapshotMeta) -> pd.Series:
        key = cells.str.casefold().str.replace(r"[\s_-]", "", regex=True)
        norm = key.map(_FORECAST)
        unknown = cells[cells.notna() & norm.isna()].value_counts()
        for value, count in unknown.items():
            meta.warnings.append(
                f"{table.label}: column {h}: forecast category {value!r} ({count} records) is "
                f"not one of omitted, pipeline, best case, commit, closed; left empty"
            )
        return norm

    # -- stage history ------------------------------------------------------------------------

    def _history(self, stage_map: StageMap, opps: pd.DataFrame,
                 meta: SnapshotMeta) -> pd.DataFrame:
        o = self.opts
        assert o.stage_history is not None
        table = self._read(o.stage_history, "stage history", meta)
        explicit = {k: v for k, v in o.history_columns.items()}
        cols = {k: table.column(explicit.get(k, k), f"source.history_columns.{k}")
                for k in ("opportunity_id", "stage", "entered_at")}
        headers = {k: explicit.get(k, k) for k in cols}
        rej = Rejections(table)
        opp_id, raw_stage = cols["opportunity_id"], cols["stage"]
        rej.add(opp_id.isna(), f"column {headers['opportunity_id']}: the opportunity id is empty")
        known = opp_id.isin(opps["id"].dropna().astype(str))
        rej.add(opp_id.notna() & ~known, f"column {headers['opportunity_id']}: opportunity "
                + quoted(opp_id) + " is not among the loaded opportunities")
        stage, _ = stage_map.map_series(raw_stage)
        stage.index = raw_stage.index
        rej.add(raw_stage.isna(), f"column {headers['stage']}: the stage is empty")
        unknown = raw_stage.notna() & stage.isna()
        if o.unknown_stage == "reject":
            rej.add(unknown, f"column {headers['stage']}: stage " + quoted(raw_stage)
                    + " is not in the stage map")
        entered = self._dates(table, cols["entered_at"], headers["entered_at"], aware=True,
                              rej=rej)
        rej.add(cols["entered_at"].isna(), f"column {headers['entered_at']}: the date is empty")
        keep = _record_rejections(table, rej, meta)
        for name, count in raw_stage[unknown & keep].value_counts().items():
            meta.warnings.append(
                f"{table.label}: stage {name!r} ({count} records) is not in the stage map; "
                f"add it to `source.stage_map`"
            )
        frame = pd.DataFrame({"opportunity_id": opp_id, "stage": stage,
                              "source_stage": raw_stage, "entered_at": entered})[keep]
        frame = frame.sort_values(["opportunity_id", "entered_at"], kind="stable")
        # a real export writes a row per field change: consecutive rows in the same stage are
        # one stay, entered at the first of them (stage age is measured from there)
        same = (frame["opportunity_id"].eq(frame["opportunity_id"].shift())
                & frame["source_stage"].eq(frame["source_stage"].shift())).fillna(False)
        if same.any():
            meta.extra.setdefault("repeated_stage_rows", {})[table.label] = int(same.sum())
        frame = frame[~same.astype(bool)]
        meta.extra.setdefault("rows_read", {})[table.label] = len(table.frame)
        return make_stage_history(frame)

    def _match_owners(self, opps: pd.DataFrame, owners: pd.DataFrame, table: CsvTable) -> None:
        """The opportunities name owners by e-mail or name: turn those into owner ids."""
        key = self.opts.owner_match
        if key not in owners.columns or owners[key].isna().all():
            raise SourceDataError(
                f"{table.label}: source.owner_match = {key!r}, but no column of the owners file "
                f"gives the owner {key}; map it with `source.owner_columns.{key}` (headers "
                f"found: {', '.join(table.headers)})")
        known = owners.dropna(subset=[key])
        lookup = pd.Series(known["id"].to_numpy(),
                           index=known[key].astype(str).str.strip().str.casefold().to_numpy())
        lookup = lookup[~lookup.index.duplicated()]
        given = opps["owner_id"]
        ids = given.astype("string").str.strip().str.casefold().map(lookup)
        # an unknown one stays as it was (the owners-file check below warns about it)
        opps["owner_id"] = ids.fillna(given).astype(given.dtype)

    # -- owners ---------------------------------------------------------------------------------

    def _owners(self, opps: pd.DataFrame, meta: SnapshotMeta) -> pd.DataFrame:
        o = self.opts
        if o.owners is None:
            # No owners file: every owner named on an opportunity, known by its id only.
            ids = opps["owner_id"].dropna().drop_duplicates().sort_values()
            meta.extra["owners_derived"] = True
            return make_owners(pd.DataFrame({"id": ids, "name": ids}))
        table = self._read(o.owners, "owners", meta)
        cols = self._mapping(table, o.owner_columns, set(OWNER_SCHEMA), "source.owner_columns")
        headers = o.owner_columns or {c: c for c in cols}
        if "id" not in cols:
            raise SourceDataError(
                f"{table.label}: no column gives the owner id; map it with "
                f"`source.owner_columns.id` (headers found: {', '.join(table.headers)})"
            )
        rej = Rejections(table)
        ids = cols["id"]
        rej.add(ids.isna(), f"column {headers['id']}: the owner id is empty")
        rej.add(ids.notna() & ids.duplicated(), f"column {headers['id']}: duplicate owner id "
                + quoted(ids))
        out = dict(cols)
        if "active" in cols:
            out["active"], bad = parse_bools(cols["active"], true_values=o.true_values,
                                             false_values=o.false_values)
            rej.add(bad, f"column {headers['active']}: cannot parse " + quoted(cols["active"])
                    + " as true/false")
        keep = _record_rejections(table, rej, meta)
        frame = pd.DataFrame(out)[keep]
        # reports show owner names: an owner without one is shown by id
        frame["name"] = frame.get("name", frame["id"]).fillna(frame["id"])
        if o.managers_as_owners and "manager_id" in frame.columns:
            frame = _add_managers(frame)
        owners = make_owners(frame)
        if o.owner_match != "id":
            self._match_owners(opps, owners, table)
        missing = opps["owner_id"][opps["owner_id"].notna() & ~opps["owner_id"].isin(owners["id"])]
        if len(missing):
            top = missing.value_counts().head(5)
            names = ", ".join(f"{k!r} ({v})" for k, v in top.items())
            meta.warnings.append(
                f"{table.label}: {len(missing)} opportunities have an owner that is not in this "
                f"file: {names}"
            )
        return owners


def _vocabulary(cells: pd.Series, vocab: dict[str, str]) -> pd.Series:
    """Replace values found in ``vocab`` (case-insensitive); others stay as they are."""
    mapped = cells.str.casefold().map({k.strip().casefold(): v for k, v in vocab.items()})
    return mapped.astype(cells.dtype).fillna(cells) if len(cells) else cells


def _record_rejections(table: CsvTable, rej: Rejections, meta: SnapshotMeta) -> pd.Series:
    """Put a file's rejected rows into meta (with one summary warning); returns the keep mask."""
    keep = ~rej.mask
    meta.rejected.extend(rej.rows())
    n_rej = int((~keep).sum())
    if n_rej:
        meta.warnings.append(f"{table.label}: {n_rej} of {len(keep)} rows rejected")
    return keep


def _add_managers(frame: pd.DataFrame) -> pd.DataFrame:
    """Managers named only as someone's manager_id become owner rows (name = id); their team is
    their reports' team when all reports share one."""
    managers = frame["manager_id"].dropna()
    new = managers[~managers.isin(frame["id"])].drop_duplicates()
    if new.empty:
        return frame
    rows = pd.DataFrame({"id": new.values, "name": new.values})
    if "team" in frame.columns:
        teams = frame.groupby("manager_id")["team"].agg(lambda t: t.dropna().unique())
        one = teams[teams.map(len) == 1].map(lambda t: t[0])
        rows["team"] = rows["id"].map(one)
    return pd.concat([frame, rows], ignore_index=True)


def _render(template: str, table: CsvTable, option: str, strict: bool = False) -> pd.Series:
    """Vectorized ``str.format`` over CSV headers. Missing cells render empty and the result is
    trimmed of spaces and dashes at its ends (or, with ``strict``, the whole value is NA)."""
    out = pd.Series("", index=table.frame.index, dtype=object)
    any_value = pd.Series(False, index=table.frame.index)
    all_values = pd.Series(True, index=table.frame.index)
    for literal, field_name, _spec, _conv in string.Formatter().parse(template):
        out = out + literal
        if field_name is None:
            continue
        if field_name == "_row":  # the row number: a generated id
            cells = pd.Series(table.frame.index.astype(str), index=table.frame.index)
        else:
            cells = table.column(field_name, option)
        any_value |= cells.notna()
        all_values &= cells.notna()
        out = out + cells.fillna("").astype(object)
    if strict:
        return out.where(all_values)
    trimmed = out.astype("string").str.strip(" -–—:/|,")
    return trimmed.where(any_value & (trimmed.str.len() > 0))


def _entered_current_stage(opps: pd.DataFrame, history: pd.DataFrame) -> pd.Series:
    """When each opportunity last entered its current common stage, from the stage history."""
    if history.empty:
        return pd.Series(pd.NaT, index=opps.index, dtype=TS)
    latest = (
        history.dropna(subset=["stage"])
        .groupby(["opportunity_id", "stage"], observed=True)["entered_at"]
        .max()
    )
    if latest.empty:  # no history row with a known stage
        return pd.Series(pd.NaT, index=opps.index, dtype=TS)
    keys = pd.MultiIndex.from_arrays([opps["id"], opps["stage"].astype(object)])
    # .array keeps the time zone (to_numpy would drop it to naive UTC)
    return pd.Series(latest.reindex(keys).array, index=opps.index).astype(TS)


__all__ = ["CsvConnector", "CsvOptions"]
