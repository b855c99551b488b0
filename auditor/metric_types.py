"""Typed metrics of one run (``AuditRun.metrics``), with the JSON shape of metrics.json.

The shell and the reports read fields (``run.metrics.hygiene_score.by_owner``), never dict keys
with conventions. ``to_dict()`` gives metrics.json exactly as documented in docs/metrics.md and
reports/schemas/metrics.schema.json, keys in the same order (the reports list metrics by it).

The scores and rates the reports read by name are typed down to their rows. The period metrics
(win rate, funnel, pipeline, ...) are shown by shape, whatever they hold (reports/metric_view.py),
so they are a :class:`Metric` envelope — name, definition, availability — around their values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: metric keys of metrics.json, in report order
METRIC_NAMES: tuple[str, ...] = (
    "lead_quality",
    "stage_conversion",
    "win_rate",
    "cycle_length",
    "deal_size",
    "pipeline_coverage",
    "loss_reasons",
    "follow_up_discipline",
    "stage_velocity",
    "hygiene_score",
    "process_compliance",
)


@dataclass(frozen=True)
class PeriodBounds:
    """A reporting period as metrics.json states it (inclusive ISO days; None for ``all``)."""

    key: str
    label: str
    start: str | None
    end: str | None


@dataclass(frozen=True)
class Counts:
    """Record counts of the audited snapshot (``counts`` in metrics.json)."""

    opportunities: int
    open: int
    closed: int
    won: int
    lost: int
    #: None when the open deals are in several currencies (amounts are never added across them)
    open_amount: float | None
    with_stage_history: int
    #: open amount per currency code, only when there are several
    open_amount_by_currency: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if out["open_amount_by_currency"] is None:
            del out["open_amount_by_currency"]
        return out


@dataclass
class Metric:
    """One metric: the sentence the report prints, whether the source supports it (else why
    not), and its values (``by_period`` keyed by period label, or as of the audit day)."""

    name: str
    definition: str
    available: bool = True
    reason: str | None = None
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def unavailable(cls, name: str, definition: str, reason: str) -> Metric:
        return cls(name, definition, available=False, reason=reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "definition": self.definition,
            "available": self.available,
            "reason": self.reason,
            **self.values,
        }


@dataclass(frozen=True)
class ScoreBasis:
    """What a score rests on: evaluated checks, applicable checks, deals, and the sentence."""

    checks: int
    applicable_checks: int
    deals_checked: int
    text: str


@dataclass(frozen=True)
class GroupScore:
    """The hygiene score of one team (or owner) with its basis and the weights roll-ups add."""

    score: float | None
    opportunities: int
    flagged: int
    checks: int
    applicable_checks: int
    deals_checked: int
    checked_weight: float
    flagged_weight: float
    basis: str


@dataclass(frozen=True)
class OwnerScore(GroupScore):
    name: str | None = None
    team: str | None = None


@dataclass
class HygieneScore:
    """Org, team and owner hygiene scores (auditor/metrics/hygiene.py says how)."""

    definition: str
    checks_evaluated_share: float | None
    basis: ScoreBasis
    weights: dict[str, float]
    org: float | None
    opportunities: int
    flagged: int
    teams: dict[str, GroupScore]
    owners: dict[str, OwnerScore]
    name: str = "hygiene_score"
    available: bool = True
    reason: str | None = None

    @property
    def by_team(self) -> dict[str, float | None]:
        return {k: t.score for k, t in self.teams.items()}

    @property
    def by_owner(self) -> dict[str, float | None]:
        return {k: o.score for k, o in self.owners.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "definition": self.definition,
            "checks_evaluated_share": self.checks_evaluated_share,
            "basis": asdict(self.basis),
            "available": self.available,
            "reason": self.reason,
            "weights": dict(self.weights),
            "org": self.org,
            "opportunities": self.opportunities,
            "flagged": self.flagged,
            "by_team": self.by_team,
            "by_owner": self.by_owner,
            "teams": {k: asdict(t) for k, t in self.teams.items()},
            "owners": {k: asdict(o) for k, o in self.owners.items()},
        }


@dataclass(frozen=True)
class Rate:
    """Checks of closed deals that found a violation, over those that could be judged."""

    checked: int
    flagged: int
    rate: float | None


@dataclass(frozen=True)
class RuleRate:
    code: str
    name: str
    checked: int
    flagged: int
    rate: float | None


@dataclass(frozen=True)
class OwnerRate:
    owner_id: str
    owner: str
    checked: int
    flagged: int
    rate: float | None


@dataclass
class ProcessCompliance:
    """Process history as rates (auditor/metrics/process.py): never to-dos."""

    definition: str
    window_days: int
    findings: int
    checks: int
    rate: float | None
    by_rule: dict[str, Rate] = field(default_factory=dict)
    by_owner: dict[str, Rate] = field(default_factory=dict)
    by_team: dict[str, Rate] = field(default_factory=dict)
    by_close_quarter: dict[str, Rate] = field(default_factory=dict)
    by_rule_list: list[RuleRate] = field(default_factory=list)
    by_owner_list: list[OwnerRate] = field(default_factory=list)
    name: str = "process_compliance"
    available: bool = True
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        head = {
            "name": self.name,
            "definition": self.definition,
            "available": self.available,
            "reason": self.reason,
        }
        body = asdict(self)
        return {**head, **{f.name: body[f.name] for f in fields(self) if f.name not in head}}


@dataclass
class Metrics:
    """Every metric of one run (metrics.json); ``caveats`` are what a reader must know first."""

    as_of: str
    timezone: str
    periods: list[PeriodBounds]
    counts: Counts
    lead_quality: Metric
    stage_conversion: Metric
    win_rate: Metric
    cycle_length: Metric
    deal_size: Metric
    pipeline_coverage: Metric
    loss_reasons: Metric
    follow_up_discipline: Metric
    stage_velocity: Metric
    hygiene_score: HygieneScore
    process_compliance: ProcessCompliance
    caveats: list[str] = field(default_factory=list)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return METRIC_NAMES

    def to_dict(self) -> dict[str, Any]:
        """metrics.json (without ``schema_version``, which the writer adds)."""
        return {
            "as_of": self.as_of,
            "timezone": self.timezone,
            "periods": [asdict(p) for p in self.periods],
            "metric_names": list(METRIC_NAMES),
            "counts": self.counts.to_dict(),
            **{name: getattr(self, name).to_dict() for name in METRIC_NAMES},
            "caveats": list(self.caveats),
        }
