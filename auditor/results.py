"""Result types every layer above the engine reads: the violation table schema, severities,
one audit's result and one whole run.

Reports read these and nothing from the shell; the engine fills ``AuditResult`` and the shell
``AuditRun``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from auditor.config import AuditConfig
from auditor.context import AuditContext
from auditor.memo import Memo
from auditor.metric_types import Metrics
from auditor.rule import Rule
from auditor.snapshot import Snapshot

VIOLATION_COLUMNS = [
    "rule_code",
    "rule_name",
    "severity",
    "opportunity_id",
    "opportunity_name",
    "owner_id",
    "account_name",
    "stage",
    "amount",
    "url",
    "message",
    "fingerprint",
]
SEVERITY_RANK = {"error": 0, "warning": 1, "info": 2}


#: check states in ``AuditResult.checks`` (one int8 per record and rule)
NOT_APPLICABLE, NOT_EVALUABLE, PASSED, FLAGGED = 0, 1, 2, 3


@dataclass
class AuditResult:
    #: the to-dos: findings on open deals, and close-out findings (CL01-CL03) on deals closed
    #: within ``audit.fix_window_days``. Fix lists, digests and new / resolved read only these.
    violations: pd.DataFrame
    suppressed: pd.DataFrame
    coverage: pd.DataFrame
    suppressions: list[dict[str, Any]]
    rules: list[Rule]
    context: AuditContext
    duration_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    #: process history: the other findings on closed deals (how they moved); same columns
    process: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=VIOLATION_COLUMNS))
    #: (records × rules) int8 check states (NOT_APPLICABLE .. FLAGGED), columns in rule order;
    #: suppressed findings count as PASSED. The score and the rates are computed from this.
    checks: Any = None
    #: per record: True where a finding would be a to-do for every rule (open deal) / for
    #: close-out rules only (closed within the fix window)
    todo_scope: Any = None
    closeout_scope: Any = None
    #: facts about the data a reader must know (imports, stale data), shown in every report
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PreviousRun:
    """The last successful run of the same source, which a run is compared with."""

    id: int
    finished_at: str | None
    score: float | None
    #: the audit day of that run (YYYY-MM-DD); reports label the comparison by it
    as_of: str | None = None


@dataclass(frozen=True)
class TrendPoint:
    """One successful run in the score trend (oldest first; the current run last)."""

    run_id: int | None
    finished_at: str | None
    score: float | None
    violations: int
    #: the audit day the run describes (YYYY-MM-DD): trends are labelled by it, not run time
    as_of: str | None = None


@dataclass(frozen=True)
class HistoryDiff:
    """What changed since the previous successful run (``AuditRun.history``; docs/history.md).

    ``new_items`` / ``resolved_items`` are JSON-ready finding rows with the stored violation
    columns (auditor.history.store.STORED_VIOLATION_COLUMNS).
    """

    previous_run: PreviousRun
    new: int
    resolved: int
    persisting: int
    new_items: list[dict[str, Any]]
    resolved_items: list[dict[str, Any]]
    trend: list[TrendPoint]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HistoryDiff:
        return cls(
            previous_run=PreviousRun(**d["previous_run"]),
            new=d["new"],
            resolved=d["resolved"],
            persisting=d["persisting"],
            new_items=list(d["new_items"]),
            resolved_items=list(d["resolved_items"]),
            trend=[TrendPoint(**t) for t in d["trend"]],
        )


@dataclass
class AuditRun:
    """Everything a report needs about one run (reports read this, never the CRM or rules)."""

    config: AuditConfig
    snapshot: Snapshot
    result: AuditResult
    metrics: Metrics
    started_at: datetime
    finished_at: datetime | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: the comparison with the previous successful run; None on a source's first run or
    #: without history
    history: HistoryDiff | None = None
    run_id: int | None = None
    outputs: list[Path] = field(default_factory=list)
    delivery: list[dict[str, Any]] = field(default_factory=list)
    #: values the reports derive from this run (auditor.memo; keys ``("reports", name)``)
    memo: Memo = field(default_factory=Memo, init=False, repr=False, compare=False)

    @property
    def score(self) -> float | None:
        return self.metrics.hygiene_score.org

    @property
    def duration_s(self) -> float:
        return sum(self.timings.values())

    @property
    def status(self) -> str:
        """"ok", or "delivery_failed" when an e-mail could not be delivered (exit status 4)."""
        failed = any(d.get("status") == "failed" for d in self.delivery)
        return "delivery_failed" if failed else "ok"

    def summary(self) -> dict[str, Any]:
        """The run summary the history stores: a selection of :meth:`facts` plus counts."""
        v = self.result.violations
        facts = self.facts()
        h = self.history  # no previous run to compare with: new / resolved unknown, not 0
        keep = ("as_of", "incremental", "records", "violations", "suppressed")
        return {
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            **{k: facts[k] for k in keep},
            "score": self.score,
            **{k: facts[k] for k in ("duration_s", "api_calls")},
            "counts": {
                "by_rule": {str(k): int(n) for k, n in v["rule_code"].value_counts().items()},
                "by_severity": {str(k): int(n) for k, n in v["severity"].value_counts().items()},
                "rejected_rows": facts["rejected_rows"],
                "new": h.new if h else None,
                "resolved": h.resolved if h else None,
                "persisting": h.persisting if h else None,
            },
        }

    def facts(self) -> dict[str, Any]:
        meta = self.snapshot.meta
        return {
            "source": meta.source,
            "source_type": meta.source_type,
            "as_of": self.result.context.as_of.date().isoformat(),
            "started_at": self.started_at.isoformat(),
            "records": int(len(self.snapshot.opportunities)),
            "history_rows": int(len(self.snapshot.stage_history)),
            "loaded_rows": meta.loaded_rows,
            "incremental": meta.incremental,
            "run_id": self.run_id,
            "rejected_rows": len(meta.rejected),
            "api_calls": meta.api_calls,
            "api_usage": meta.api_usage.to_dict() if meta.api_usage else None,
            "unmapped_stages": meta.unmapped_stages,
            "warnings": list(meta.warnings),
            "notes": list(self.result.notes),
            "process_findings": int(len(self.result.process)),
            # file sources: each file's text encoding, detected or set, with its confidence
            "encodings": dict(meta.extra.get("encodings", {})),
            "rules_run": len(self.result.rules),
            "violations": int(len(self.result.violations)),
            "suppressed": int(len(self.result.suppressed)),
            "duration_s": round(self.duration_s, 3),
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            # per status count of the emails (sent / dry-run / failed / skipped), once delivered
            "delivery": {
                s: sum(1 for d in self.delivery if d.get("status") == s)
                for s in dict.fromkeys(d.get("status") for d in self.delivery)
            },
        }
