"""Many sources in one config (``[[sources]]``): each audited in its own process, in parallel
(bounded by ``--jobs``), with its own report folder, plus a portfolio overview.

A source that fails does not stop the others: its error is recorded in the overview and the
exit status says which failed (see :data:`PARTIAL_FAILURE`).
"""

from __future__ import annotations

import logging
import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from auditor.config import AuditConfig
from auditor.errors import AuditorError, ConfigError

log = logging.getLogger(__name__)

#: exit status of a many-source run in which at least one source failed (the others' reports
#: were written; portfolio.json names the failed ones and their own exit statuses)
PARTIAL_FAILURE = 6
#: tables a [[sources]] entry may override besides its source keys
OVERRIDES = ("process", "rules")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def source_configs(config: AuditConfig) -> dict[str, AuditConfig]:
    """One complete config per ``[[sources]]`` entry, in config order."""
    base = config.model_dump(mode="python", exclude={"sources"}, by_alias=True)
    out: dict[str, AuditConfig] = {}
    for i, entry in enumerate(config.sources, start=1):
        where = f"{config.origin}: [[sources]] entry {i}"
        name = entry.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(f"{where}: `name` is required: letters, digits, '.', '_' or '-' "
                              f"(it names the report folder), got {name!r}")
        if name in out:
            raise ConfigError(f"{where}: source name {name!r} is used twice")
        if "type" not in entry:
            raise ConfigError(f"{where} ({name}): missing required key `type`")
        source = {k: v for k, v in entry.items() if k not in OVERRIDES}
        data = {**base, "source": source}
        for key in OVERRIDES:
            if key in entry:
                if not isinstance(entry[key], dict):
                    raise ConfigError(f"{where} ({name}): `{key}` must be a table")
                data[key] = _merge(base[key], entry[key])
        try:
            cfg = AuditConfig.model_validate(data)
        except Exception as exc:  # a pydantic error names the key; add which source
            from pydantic import ValidationError

            from auditor.config import format_validation_error

            if isinstance(exc, ValidationError):
                raise ConfigError(format_validation_error(exc, f"{where} ({name})")) from None
            raise
        cfg.origin, cfg.base_dir = f"{config.origin} [sources.{name}]", config.base_dir
        out[name] = cfg
    return out


@dataclass
class PortfolioResult:
    rows: list[dict[str, Any]]
    outputs: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] != "success"]


def _audit_one(name: str, cfg: AuditConfig, out: Path, as_of: date | None, full: bool,
               dry_run: bool) -> dict[str, Any]:
    """Worker (own process): audit one source; never raises."""
    from auditor.app.run import execute
    from auditor.secrets import redact
    from reports.assessment import at_risk_amount

    row: dict[str, Any] = {"source": name, "type": str(cfg.source.get("type")),
                           "status": "failed", "exit_code": 1, "error": None, "records": None,
                           "findings": None, "score": None, "at_risk": None, "run_id": None,
                           "report": None, "emails_failed": 0}
    try:
        run = execute(cfg, out_dir=out, as_of=as_of, full=full, dry_run=dry_run)
    except AuditorError as exc:
        row.update(exit_code=exc.exit_code, error=redact(exc))
        return row
    except Exception as exc:  # noqa: BLE001 - one source's bug must not stop the others
        row.update(error=redact(f"{type(exc).__name__}: {exc}"))
        return row
    failed_mail = sum(1 for d in run.delivery if d["status"] == "failed")
    row.update(status="success", exit_code=4 if failed_mail else 0,
               records=int(len(run.snapshot.opportunities)),
               findings=int(len(run.result.violations)), score=run.score,
               at_risk=at_risk_amount(run), run_id=run.run_id, report=f"{name}/report.html",
               emails_failed=failed_mail)
    return row


def run_portfolio(config: AuditConfig, *, out_dir: Path | None = None,
                  as_of: date | None = None, full: bool = False, dry_run: bool = False,
                  jobs: int = 2) -> PortfolioResult:
    """Audit every ``[[sources]]`` entry, at most ``jobs`` at a time, each in its own process."""
    from reports.portfolio import write_portfolio

    configs = source_configs(config)
    out = Path(out_dir or config.resolve(config.report.out_dir))
    jobs = max(1, min(jobs, len(configs)))
    rows: dict[str, dict[str, Any]] = {}
    # spawn, not fork: a fresh interpreter per worker shares no locks, threads or connections
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        futures = {pool.submit(_audit_one, name, cfg, out / name, as_of, full, dry_run): name
                   for name, cfg in configs.items()}
        for fut in as_completed(futures):
            name = futures[fut]
            try:
                rows[name] = fut.result()
            except Exception as exc:  # noqa: BLE001 - the worker process itself died
                rows[name] = {"source": name, "type": str(configs[name].source.get("type")),
                              "status": "failed", "exit_code": 1,
                              "error": f"worker process died: {type(exc).__name__}: {exc}",
                              "records": None, "findings": None, "score": None,
                              "at_risk": None, "run_id": None, "report": None,
                              "emails_failed": 0}
            r = rows[name]
            log.info("source %s: %s", name, r["status"] if r["status"] == "success"
                     else f"failed ({r['error']})")
    ordered = [rows[name] for name in configs]
    day = as_of.isoformat() if as_of else (config.audit.as_of.isoformat()
                                           if config.audit.as_of else None)
    return PortfolioResult(ordered, write_portfolio(ordered, out, as_of=day))


def only_source(config: AuditConfig, name: str) -> AuditConfig:
    """The config of one ``[[sources]]`` entry (``crm-audit run --source NAME``)."""
    configs = source_configs(config)
    if name not in configs:
        raise ConfigError(f"{config.origin}: no source named {name!r} in [[sources]] "
                          f"(there are: {', '.join(configs) or 'none'})")
    return configs[name]
