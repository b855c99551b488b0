"""Offline connector for the deals CSV exported from HubSpot's deals view.

Headers are property labels and stages are labels; ``Date entered "<stage> (<pipeline>)"``
columns become stage history. The rows are turned into the same :class:`RawDeals` the API path
builds, so the shared normaliser gives the same Snapshot for the same deals.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from auditor.errors import SourceDataError
from auditor.snapshot import STR, RejectedRow, Snapshot, make_owners
from auditor.stages import StageMap
from connectors.base import Connector
from connectors.currency import configured_rates, convert
from connectors.file_dates import decide_order, is_slash, parse_slash
from connectors.file_text import decode_bytes
from connectors.hubspot.connector import reached_by_pipeline
from connectors.hubspot.fields import (
    DATE_ENTERED_HEADER,
    DATE_ENTERED_PREFIX,
    EXPORT_LABELS,
    EXPORT_ONLY_PROPERTIES,
)
from connectors.hubspot.normalise import PullContext, RawDeals, normalise
from connectors.hubspot.options import HubSpotExportOptions
from connectors.hubspot.pipelines import (
    catalogue_from_labels,
    catalogue_from_pipelines,
    map_catalogue,
    resolve_stages,
)
from connectors.hubspot.values import parse_booleans
from connectors.limits import check_cells, check_file_size, check_header
from connectors.local_files import contained


def _fold(text: str) -> str:
    return " ".join(str(text).split()).casefold()


class HubSpotExportConnector(Connector):
    type_name: ClassVar[str] = "hubspot_export"
    Options: ClassVar[type[HubSpotExportOptions]] = HubSpotExportOptions  # type: ignore[assignment]
    options: HubSpotExportOptions
    #: an export is read whole on every run (``since`` is ignored)
    pulls_incrementally: ClassVar[bool] = False

    def pull(self, since: Any = None) -> Snapshot:
        o = self.options
        path = contained(self.resolve(o.path))
        ctx = PullContext(source=self.source_name, source_type=self.type_name,
                          portal_id=o.portal_id, portal_tz=o.portal_timezone or "UTC",
                          naive_tz=o.portal_timezone or "UTC")
        if o.portal_timezone is None:
            ctx.warnings.append("source.portal_timezone is not set: export times and dates are "
                                "read as UTC")
        if o.portal_id is None:
            ctx.warnings.append("source.portal_id is not set: deals carry no record links")
        frame = self._read(path, ctx)
        props, entered, rejected, mapped = self._properties(frame, path)
        used = set(mapped) | {c for c, _, _ in entered}
        ignored = [c for c in frame.columns if c not in used]
        if ignored:
            ctx.extra["ignored_columns"] = ignored
        stage_map = StageMap.build("hubspot", o.stage_map, name="source.stage_map")
        cat = self._catalogue(props, entered)
        cat = map_catalogue(cat, stage_map)
        # "Date entered" columns → hs_v2_date_entered_<stage id>, as the API names them
        keys = pd.DataFrame(entered, columns=["col", "stage", "pipeline"])
        pos = resolve_stages(cat, keys["stage"].astype(STR), keys["pipeline"].astype(STR))
        ids = cat["stage_id"].reindex(pos.fillna(-1).astype(int)).to_numpy()
        for (col, stage, pipeline), sid in zip(entered, ids, strict=True):
            if pd.isna(sid):
                ctx.warnings.append(f"{path.name}: column {col!r} names stage {stage!r} of "
                                    f"pipeline {pipeline!r}, which the pipelines file lacks; "
                                    "ignored")
                continue
            # by the file's row index (reindex: pandas would adopt frame's rows into an empty
            # props)
            props[DATE_ENTERED_PREFIX + str(sid)] = frame[col].reindex(props.index)
        self._slash_dates(props, path)
        for prop in EXPORT_ONLY_PROPERTIES:
            if prop in props:  # "Acme; Globex": the first company
                props[prop] = props[prop].str.split(";").str[0].str.strip()
        owners = self._owners(props, ctx)
        if "hs_deal_stage_probability" in props:
            props["hs_deal_stage_probability"] = _percent(props["hs_deal_stage_probability"])
        props = props.reset_index(drop=True)
        present = frozenset(c for c in props.columns if c != "id")
        raw = RawDeals(props=props.rename(columns={"hs_object_id": "id"}), present=present,
                       rejected=rejected,
                       extra_columns=[(p, c, k) for p, (c, k) in EXPORT_ONLY_PROPERTIES.items()])
        ctx.extra["reached_stages_by_pipeline"] = reached_by_pipeline(cat)
        snap = normalise(raw, cat, owners, o, stage_map, ctx)
        rates = configured_rates(o.corporate_currency, o.conversion_rates)
        return convert(snap, rates, where=path.name)

    def check(self) -> dict[str, Any]:
        """Read the export and report what an audit would work with."""
        snap = self.pull()
        return {
            "deals": len(snap.opportunities),
            "rejected_rows": len(snap.meta.rejected),
            "unmapped_stages": dict(snap.meta.unmapped_stages),
            "ignored_columns": snap.meta.extra.get("ignored_columns", []),
            "warnings": list(snap.meta.warnings),
        }

    def _slash_dates(self, props: pd.DataFrame, path: Path) -> None:
        """Slash dates (03/31/2024 10:00 AM) → ISO text, in the order the setting or the file
        gives (in place); ISO values are left as they are."""
        kinds = {p: k for p, _, k in self.options.columns()}
        cols = [c for c in props.columns
                if kinds.get(c) in ("ts", "date") or c.startswith(DATE_ENTERED_PREFIX)]
        labels = {c: c for c in cols}
        day_first = decide_order({labels[c]: props[c].set_axis(props.index + 2) for c in cols},
                                 self.options.date_order, label=path.name,
                                 option="source.date_order")
        if day_first is None:
            return
        for c in cols:
            slash = is_slash(props[c])
            if slash.any():
                parsed = parse_slash(props[c], slash, day_first)
                iso = parsed.dt.strftime("%Y-%m-%dT%H:%M:%S").astype(STR)
                # a value that is no date in that order stays as it was: normalise warns on it
                props.loc[slash & parsed.notna(), c] = iso

    # -- reading -----------------------------------------------------------------------------
    def _read(self, path: Path, ctx: PullContext) -> pd.DataFrame:
        where = f"HubSpot export {path}"
        if path.is_file():
            check_file_size(path, where, self.options)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SourceDataError(f"HubSpot export {path} does not exist") from None
        decoded = decode_bytes(data, label=f"HubSpot export {path}",
                               setting=self.options.encoding, option="source.encoding")
        check_header(data, where, encoding=decoded.encoding, delimiter=",", limits=self.options)
        ctx.extra.setdefault("encodings", {})[path.name] = decoded.fact()
        if (mixed := decoded.warning(path.name)) is not None:
            ctx.warnings.append(mixed)
        try:
            df = pd.read_csv(io.StringIO(decoded.text), dtype=str, keep_default_na=False)
        except pd.errors.EmptyDataError:
            raise SourceDataError(
                f"HubSpot export {path} is empty (expected a header row)") from None
        except pd.errors.ParserError as exc:
            raise SourceDataError(f"HubSpot export {path} cannot be read as CSV: {exc}") from None
        df = df.astype(STR)
        check_cells(df, where, self.options)
        return df.where(df.apply(lambda s: s.str.strip() != ""))

    def _properties(
        self, frame: pd.DataFrame, path: Path
    ) -> tuple[pd.DataFrame, list[tuple[str, str, str]], list[RejectedRow], list[str]]:
        """Property columns (renamed), date-entered headers, rejected rows, headers used."""
        labels = {_fold(k): v for k, v in {**EXPORT_LABELS, **self.options.export_columns}.items()}
        columns: dict[str, str] = {}
        entered: list[tuple[str, str, str]] = []
        for col in frame.columns:
            m = DATE_ENTERED_HEADER.match(col)
            if m:
                entered.append((col, m["stage"].strip(), m["pipeline"].strip()))
            elif _fold(col) in labels and labels[_fold(col)] not in columns.values():
                columns[col] = labels[_fold(col)]
        for need, label in (("hs_object_id", "Record ID"), ("dealstage", "Deal Stage")):
            if need not in columns.values():
                raise SourceDataError(
                    f"{path}: no {label!r} column (found: {', '.join(frame.columns)}); export the "
                    f"deals view with the {label!r} column, or map its header in "
                    "source.export_columns")
        props = frame[list(columns)].rename(columns=columns).reset_index(drop=True)
        rejected: list[RejectedRow] = []
        row_no = pd.Series(range(2, len(props) + 2))  # the header is row 1
        bad = props["hs_object_id"].isna() | props["hs_object_id"].duplicated()
        for n, rid in zip(row_no[bad], props.loc[bad, "hs_object_id"], strict=True):
            reason = "no Record ID" if pd.isna(rid) else f"duplicate Record ID {rid}"
            rejected.append(RejectedRow(f"{path.name} row {n}", reason))
        # keep the file's row index: the date-entered columns are joined from the file by it
        return props[~bad], entered, rejected, list(columns)

    def _catalogue(self, props: pd.DataFrame, entered: list[tuple[str, str, str]]) -> pd.DataFrame:
        o = self.options
        if o.pipelines_path is not None:
            p = contained(self.resolve(o.pipelines_path))
            try:
                payload = json.loads(p.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise SourceDataError(f"pipelines file {p} does not exist") from None
            except ValueError as exc:
                raise SourceDataError(f"pipelines file {p} is not JSON: {exc}") from None
            return catalogue_from_pipelines(payload, str(p))
        pairs = pd.DataFrame([(pl, st) for _, st, pl in entered],
                             columns=["pipeline_label", "stage_label"])
        seen = pd.DataFrame({
            "pipeline_label": props.get("pipeline", pd.Series(pd.NA, index=props.index)),
            "stage_label": props["dealstage"],
        }).dropna(subset=["stage_label"])
        return catalogue_from_labels(pd.concat([pairs, seen], ignore_index=True))

    def _owners(self, props: pd.DataFrame, ctx: PullContext) -> pd.DataFrame:
        """Owner names in the export → owner ids through the owners file, when given."""
        names = props.get("hubspot_owner_id")
        if self.options.owners_path is None:
            distinct = (names.dropna().drop_duplicates().sort_values() if names is not None
                        else pd.Series([], dtype=STR))
            return make_owners(pd.DataFrame({"id": distinct, "name": distinct}))
        path = contained(self.resolve(self.options.owners_path))
        if path.is_file():
            check_file_size(path, f"owners file {path}", self.options)
            check_header(path, f"owners file {path}", encoding="utf-8", delimiter=",",
                         limits=self.options)
        try:
            owners = pd.read_csv(path, dtype=str, keep_default_na=False).astype(STR)
            check_cells(owners, f"owners file {path}", self.options)
        except FileNotFoundError:
            raise SourceDataError(f"owners file {path} does not exist") from None
        except pd.errors.EmptyDataError:
            raise SourceDataError(f"owners file {path} is empty (expected a header row)") from None
        except (UnicodeError, pd.errors.ParserError) as exc:
            raise SourceDataError(
                f"owners file {path} cannot be read as UTF-8 CSV: {exc}") from None
        if "id" not in owners.columns:
            raise SourceDataError(f"owners file {path}: expected an `id` column")
        if "active" in owners.columns:
            active, bad = parse_booleans(owners["active"])
            if bad.any():
                raise SourceDataError(f"owners file {path}: column `active` must be true/false "
                                      f"(row {int(bad.idxmax()) + 2})")
            owners["active"] = active
        if names is not None:
            lookup: dict[str, str] = {}
            for col in ("email", "name", "id"):
                if col in owners.columns:
                    lookup.update({_fold(k): v for k, v in zip(owners[col], owners["id"],
                                                               strict=True) if pd.notna(k)})
            folded = names.str.strip().str.replace(r"\s+", " ", regex=True).str.casefold()
            ids = folded.map(lookup).astype(STR)
            unknown = names[names.notna() & ids.isna()]
            if len(unknown):
                ctx.warnings.append(f"{unknown.nunique()} deal owner(s) not in the owners file "
                                    f"(e.g. {unknown.iloc[0]!r}); their name is used as the id")
            props["hubspot_owner_id"] = ids.fillna(names)
        return make_owners(owners)


def _percent(s: pd.Series) -> pd.Series:
    """UI exports may show probability as "40%"; the API sends 0.4."""
    text = s.astype(STR).str.strip()
    pct = text.str.endswith("%").fillna(False).astype(bool)
    nums = pd.to_numeric(text[pct].str.rstrip("%"), errors="coerce") / 100
    return text.where(~pct, nums.astype(STR))
