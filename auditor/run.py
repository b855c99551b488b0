"""One audit run end to end: pull → audit → metrics → history → reports → delivery.

Each phase reads only what the one before produced. Phase timings are kept for the run facts and
the benchmarks. A run that fails part-way raises; nothing is delivered for it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from auditor.config import AuditConfig
from auditor.engine import AuditResult, run_audit
from auditor.metrics import compute_metrics
from auditor.snapshot import Snapshot

log = logging.getLogger(__name__)


@dataclass
class AuditRun:
    """Everything a report needs about one run (reports read this, never the CRM or rules)."""

    config: AuditConfig
    snapshot: Snapshot
    result: AuditResult
    metrics: dict[str, Any]
    started_at: datetime
    finished_at: datetime | None = None
    timings: dict[str, float] = field(default_factory=dict)
    #: filled by the history store when enabled: {"previous_run": ..., "new": [...], ...}
    history: dict[str, Any] | None = None
    run_id: int | None = None
    outputs: list[Path] = field(default_factory=list)
    delivery: list[dict[str, Any]] = field(default_factory=list)

    @property
    def score(self) -> float | None:
        return self.metrics.get("hygiene_score", {}).get("org")

    @property
    def duration_s(self) -> float:
        return sum(self.timings.values())

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
            "rejected_rows": len(meta.rejected),
            "api_calls": meta.api_calls,
            "api_usage": meta.api_usage,
            "unmapped_stages": meta.unmapped_stages,
            "warnings": list(meta.warnings),
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


def pull(config: AuditConfig, since: datetime | None = None, as_of: date | None = None) -> Snapshot:
    from connectors.registry import build_connector

    connector = build_connector(config)
    if hasattr(connector, "as_of"):
        connector.as_of = as_of or config.audit.as_of  # the demo org is built "as of" that day
    return connector.pull(since=since).validate()


def audit_snapshot(
    snap: Snapshot, config: AuditConfig, as_of: date | None = None, started: float | None = None
) -> AuditRun:
    """Audit an already pulled Snapshot (rules + metrics)."""
    t = time.perf_counter()
    started_at = datetime.now(UTC)
    result = run_audit(snap, config, as_of=as_of)
    t_rules = time.perf_counter()
    metrics = compute_metrics(snap, result, result.context, config.metrics)
    t_metrics = time.perf_counter()
    run = AuditRun(config, snap, result, metrics, started_at)
    run.timings["rules"] = t_rules - t
    run.timings["metrics"] = t_metrics - t_rules
    return run


def execute(
    config: AuditConfig,
    *,
    out_dir: Path | None = None,
    as_of: date | None = None,
    full: bool = False,
    deliver: bool = True,
    dry_run: bool = False,
) -> AuditRun:
    """Run the configured audit, write the reports and deliver them. Returns the finished run.

    Delivery outcomes land in ``run.delivery`` (one dict per recipient) and in run.json; a
    failed recipient does not raise (the CLI turns it into exit status 4).
    """
    from reports.render import write_reports

    t0 = time.perf_counter()
    snap = pull(config, as_of=as_of)
    t1 = time.perf_counter()
    run = audit_snapshot(snap, config, as_of=as_of)
    run.timings = {"pull": t1 - t0, **run.timings}
    t2 = time.perf_counter()
    out = out_dir or config.resolve(config.report.out_dir)
    run.outputs = write_reports(run, out)
    run.timings["reports"] = time.perf_counter() - t2
    if deliver:
        from reports.delivery import deliver as send_reports

        t3 = time.perf_counter()
        run.delivery = send_reports(run, config, dry_run=dry_run, out_dir=Path(out))
        run.timings["delivery"] = time.perf_counter() - t3
    run.finished_at = datetime.now(UTC)
    if (Path(out) / "run.json").exists():
        from reports.machine import write_run_json

        write_run_json(run, Path(out) / "run.json")  # final: finish time, delivery outcomes
    return run
