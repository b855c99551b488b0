"""What a source will provide, told from its options before pulling (``check-config --offline``).

Each connector type maps configured options onto Snapshot columns in a known way; this module
predicts the resulting ``provided_fields`` and whether stage history comes with the pull, then
asks each selected rule, on a one-record probe snapshot of that shape, whether it could run.
The probe goes through the rules' own ``requires`` and ``not_evaluable``, so the answer follows
the rules rather than a second list kept here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from auditor.config import AuditConfig
from auditor.context import AuditContext
from auditor.rule import STAGE_HISTORY, Rule
from auditor.snapshot import (
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_owners,
    make_stage_history,
)
from auditor.stages import STAGES

if TYPE_CHECKING:
    from connectors.base import Connector


@dataclass(frozen=True)
class SourceShape:
    provided_fields: frozenset[str]
    has_stage_history: bool
    #: custom columns the source adds (e.g. exit-criteria fields like ``budget``)
    extra_columns: frozenset[str] = field(default_factory=frozenset)
    #: common stages the stage map reaches (skipped-stage rules need them)
    reached_stages: frozenset[str] = field(default_factory=frozenset)


#: columns every connector fills once it has an id and a stage
_ALWAYS = frozenset({"id", "source", "stage", "source_stage", "is_closed", "is_won"})


def expected_shape(connector: Connector) -> SourceShape | None:
    """The predicted shape, or None when it depends on data only a pull can show."""
    kind = connector.type_name
    opts = connector.options
    if kind == "demo":  # generated locally: its own meta is the truth
        from auditor.snapshot import OPPORTUNITY_SCHEMA

        snap = connector.pull()
        meta = snap.meta
        extra = frozenset(snap.opportunities.columns) - frozenset(OPPORTUNITY_SCHEMA)
        return SourceShape(meta.provided_fields, meta.has_stage_history, extra,
                           meta.reached_stages)
    if kind == "csv":
        return _csv_shape(connector)
    reached = _reached(kind, opts)
    if kind == "salesforce":
        from connectors.salesforce.fields import opportunity_specs

        cols = {s.column for s in opportunity_specs(opts)}  # type: ignore[arg-type]
        history = bool(getattr(opts, "include_history", True))
        if history:
            cols |= {"stage_entered_at", "close_date_changes"}
        custom = set(getattr(opts, "custom_fields", {}))
        if getattr(opts, "currency", None):
            cols.add("currency")
        return SourceShape(frozenset(cols | custom | _ALWAYS | {"url"}), history,
                           frozenset(custom), reached)
    if kind == "hubspot":
        from connectors.hubspot.fields import CONFIGURABLE_COLUMNS, STANDARD_PROPERTIES

        cols = {c for c, _ in STANDARD_PROPERTIES.values()} | {"pipeline", "url"}
        cols |= {c for opt, (c, _) in CONFIGURABLE_COLUMNS.items() if getattr(opts, opt, None)}
        cols.add("stage_entered_at")
        if getattr(opts, "stage_history", "") == "full":
            cols.add("close_date_changes")
        custom = set(getattr(opts, "custom_fields", {}))
        return SourceShape(frozenset(cols | custom | _ALWAYS), True, frozenset(custom), reached)
    return None


def _reached(kind: str, opts: object) -> frozenset[str]:
    """Stages the default map of the CRM plus ``source.stage_map`` reach (the live pipeline
    may reach fewer; only a pull can tell)."""
    from auditor.stages import StageMap

    default = {"salesforce": "salesforce", "hubspot": "hubspot"}.get(kind)
    if default is None:
        default = getattr(opts, "stage_map_default", None)
    overrides = getattr(opts, "stage_map", {}) or {}
    return StageMap.build(default, overrides, name="source.stage_map").reached


def _csv_shape(connector: Connector) -> SourceShape | None:
    from auditor.snapshot import OPPORTUNITY_SCHEMA

    opts = connector.options
    columns: dict[str, str] = dict(getattr(opts, "columns", {}))
    if columns:
        cols = set(columns)
    else:
        # same-named headers are used as they are: the header row tells (a local read)
        headers = _csv_headers(connector.resolve(opts.opportunities), opts)  # type: ignore[attr-defined]
        if headers is None:
            return None
        cols = set(headers) & set(OPPORTUNITY_SCHEMA)
        if "stage" in headers:
            cols.add("source_stage")
    history = getattr(opts, "stage_history", None) is not None
    if getattr(opts, "name_template", None):
        cols.add("name")
    if getattr(opts, "url_template", None):
        cols.add("url")
    if "amount" in cols and getattr(opts, "currency", None):
        cols.add("currency")
    if history:
        cols.add("stage_entered_at")
    extra = set(getattr(opts, "extra_columns", {}))
    for lookup in getattr(opts, "lookups", []):
        extra |= set(lookup.columns)
    return SourceShape(frozenset(cols | _ALWAYS), history, frozenset(extra),
                       _reached("csv", opts))


def _csv_headers(path, opts) -> list[str] | None:  # noqa: ANN001 - CsvOptions, Path
    import csv

    try:
        with open(path, encoding=opts.encoding, newline="") as fh:
            return [h.strip() for h in next(csv.reader(fh, delimiter=opts.delimiter), [])]
    except (OSError, UnicodeDecodeError, LookupError):
        return None  # the data checks report an unreadable file; nothing to predict here


def _probe(shape: SourceShape, ctx: AuditContext) -> Snapshot:
    """One open deal in proposal with every provided field filled, the rest missing."""
    day = pd.Timestamp(ctx.as_of.date())
    ts = pd.Timestamp(day).tz_localize("UTC") - pd.Timedelta(days=1)
    values = {
        "id": "probe", "source": "probe", "url": "https://crm.example/probe", "name": "Probe",
        "account_id": "A1", "account_name": "Account", "owner_id": "U1", "pipeline": "default",
        "stage": "proposal", "source_stage": "Proposal", "is_closed": False, "is_won": False,
        "amount": 1000.0, "currency": "USD", "probability": 0.5, "forecast_category": "pipeline",
        "close_date": day + pd.Timedelta(days=30), "created_at": ts - pd.Timedelta(days=7),
        "updated_at": ts,
        "stage_entered_at": ts, "last_activity_at": ts, "next_step": "call",
        "next_step_due": day + pd.Timedelta(days=7), "loss_reason": "none",
        "lead_source": "web", "close_date_changes": 0, "handoff_at": ts,
    }
    row = {k: [v] for k, v in values.items() if k in shape.provided_fields}
    opp = make_opportunities(pd.DataFrame(row))
    for col in shape.extra_columns:
        opp[col] = pd.Series(["x"], dtype="string[pyarrow]")
    history = make_stage_history()
    if shape.has_stage_history:
        # a deal that went through every stage up to proposal, one day each, from creation
        path = list(STAGES[: STAGES.index("proposal") + 1])
        history = make_stage_history(pd.DataFrame({
            "opportunity_id": ["probe"] * len(path), "stage": path, "source_stage": path,
            "entered_at": [ts - pd.Timedelta(days=len(path) - 1 - i) for i in range(len(path))],
        }))
    owners = make_owners(pd.DataFrame({"id": ["U1"], "name": ["Owner"], "active": [True]}))
    meta = SnapshotMeta(
        source="probe", source_type="probe", provided_fields=shape.provided_fields,
        has_stage_history=shape.has_stage_history, reached_stages=shape.reached_stages,
    )
    return Snapshot(opp, history, owners, meta).validate()


def rules_that_cannot_run(
    rules: list[Rule], shape: SourceShape, config: AuditConfig
) -> list[tuple[str, str, str]]:
    """(code, name, reason) of each rule that could judge no record of a source this shape."""
    ctx = AuditContext.create(config.audit.as_of, config.audit.timezone, config.process)
    snap = _probe(shape, ctx)
    out = []
    for rule in rules:
        reason = _source_gap(rule, snap, ctx)
        if reason:
            out.append((rule.code, rule.name, reason))
    return out


def _source_gap(rule: Rule, snap: Snapshot, ctx: AuditContext) -> str | None:
    provided = snap.meta.provided_fields
    missing = [c for c in rule.requires if c != STAGE_HISTORY and c not in provided]
    if STAGE_HISTORY in rule.requires and not snap.meta.has_stage_history:
        missing.insert(0, "stage history")
    if missing:
        return f"the source does not provide {', '.join(missing)}"
    try:
        rule.prepare(snap, ctx)
        reasons = rule.not_evaluable(snap, ctx)
    except Exception:  # noqa: BLE001 - a rule that cannot even judge the probe: not provable here
        return None
    for reason, mask in reasons.items():
        if mask is True or (len(snap.opportunities) and bool(pd.Series(mask).fillna(False).all())):
            return reason
    return None
