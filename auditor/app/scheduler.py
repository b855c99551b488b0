"""The built-in scheduler (``crm-audit schedule``): runs the configured jobs on cron triggers.

APScheduler 3 with one job per ``[[schedule.jobs]]`` entry (cron expression + IANA time zone):

- a job never overlaps itself (``max_instances = 1``; a run still going when the next is due
  makes APScheduler skip that one and log it);
- missed runs (machine asleep, process stopped) are coalesced into one, started if no later
  than ``schedule.misfire_grace_s`` after the planned time (0: never late, i.e. within 1 s);
- cron expressions are read as crontab(5) reads them (``auditor.cron``: 0 and 7 = Sunday, a
  day matching day-of-month OR day-of-week fires), not with APScheduler's Monday-first numbers;
- SIGTERM / SIGINT stop it cleanly: no new runs start, a running one finishes first;
- a failed run is logged (and recorded as failed in the history store by the run itself) and
  alerts ``schedule.alert_emails`` by email when ``[delivery.smtp]`` is configured.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from auditor.app.alerts import send_alert
from auditor.config import AuditConfig, ScheduleJob, load_config
from auditor.cron import CronError, parse_cron
from auditor.errors import ConfigError
from auditor.secrets import redact

log = logging.getLogger(__name__)

Alert = Callable[[AuditConfig, str, str], Any]


@dataclass
class JobSpec:
    name: str
    trigger: BaseTrigger
    func: Callable[[], Any]


def cron_trigger(job: ScheduleJob, index: int, origin: str) -> BaseTrigger:
    """The job's trigger; a bad cron expression or time zone names the key."""
    where = f"{origin}: key `schedule.jobs[{index}]` ({job.name!r})"
    try:
        tz = ZoneInfo(job.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where}.timezone: unknown time zone {job.timezone!r} (use an IANA name like "
            "'Europe/Berlin')"
        ) from None
    try:
        return parse_cron(job.cron).trigger(tz)
    except CronError as exc:
        raise ConfigError(f"{where}.cron: {exc}") from None


def job_config(job: ScheduleJob, config: AuditConfig) -> AuditConfig:
    """The config a job audits with, read afresh each run so edits apply without a restart."""
    if job.config is not None:
        return load_config(config.resolve(job.config))
    origin = Path(config.origin)
    return load_config(origin) if origin.is_file() else config


def run_job(job: ScheduleJob, config: AuditConfig, alert: Alert = send_alert) -> bool:
    """One scheduled run; never raises. Returns whether it succeeded."""
    from auditor.app.run import execute

    started = datetime.now(UTC)
    try:
        cfg = job_config(job, config)
        run = execute(cfg)
    except Exception as exc:  # noqa: BLE001 - a scheduled job reports every failure
        msg = redact(exc)
        log.error("scheduled job %s failed: %s", job.name, msg)
        body = (
            f"The scheduled crm-hygiene-auditor job {job.name!r} failed.\n\n"
            f"Started: {started.isoformat()}\nError: {msg}\n\n"
            f"Config: {job.config or config.origin}\n"
            "The run is recorded as failed in the history (`crm-audit history`); no report was "
            "delivered for it.\n\n"
            + redact("".join(traceback.format_exception_only(type(exc), exc)))
        )
        try:
            alert(config, f"crm-audit: scheduled job {job.name} failed", body)
        except Exception:  # noqa: BLE001 - the failure is already logged above
            log.exception("alert for job %s failed", job.name)
        return False
    log.info(
        "scheduled job %s: %d findings, score %s (run %s)",
        job.name,
        len(run.result.violations),
        run.score,
        run.run_id,
    )
    return True


class AuditScheduler:
    """A background APScheduler with the overlap / misfire / shutdown rules above."""

    def __init__(self, misfire_grace_s: int = 3600) -> None:
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                # 0 = no grace: APScheduler wants a positive number, and one second is the
                # least it takes (a run more than 1 s late is skipped)
                "misfire_grace_time": max(1, misfire_grace_s),
            },
        )
        self.scheduler.add_listener(self._on_skip, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        self._stop = threading.Event()
        self.skipped: list[tuple[str, str]] = []

    @classmethod
    def from_config(cls, config: AuditConfig, alert: Alert = send_alert) -> AuditScheduler:
        sched = config.schedule
        if not sched.jobs:
            raise ConfigError(
                f"{config.origin}: no jobs to schedule; add a `[[schedule.jobs]]` table with "
                "`name`, `cron` and `timezone`"
            )
        out = cls(sched.misfire_grace_s)
        names: set[str] = set()
        for i, job in enumerate(sched.jobs):
            if job.name in names:
                raise ConfigError(
                    f"{config.origin}: key `schedule.jobs[{i}].name`: {job.name!r} is used twice"
                )
            names.add(job.name)
            if job.config is not None and not config.resolve(job.config).is_file():
                raise ConfigError(
                    f"{config.origin}: key `schedule.jobs[{i}].config`: "
                    f"{config.resolve(job.config)} does not exist"
                )
            trigger = cron_trigger(job, i, config.origin)
            out.add(JobSpec(job.name, trigger, _bind(job, config, alert)))
        return out

    def add(self, spec: JobSpec) -> None:
        self.scheduler.add_job(spec.func, spec.trigger, id=spec.name, name=spec.name)

    def _on_skip(self, event: JobEvent) -> None:
        why = "still running" if event.code == EVENT_JOB_MAX_INSTANCES else "missed"
        self.skipped.append((event.job_id, why))
        log.warning("job %s: a run was skipped (%s)", event.job_id, why)

    def start(self) -> list[tuple[str, datetime | None]]:
        """Start; returns each job's next run time."""
        self.scheduler.start()
        return [(j.name, j.next_run_time) for j in self.scheduler.get_jobs()]

    def stop(self) -> None:
        """Ask :meth:`run_forever` to shut down (safe from a signal handler)."""
        self._stop.set()

    def shutdown(self, wait: bool = True) -> None:
        """No new runs; with ``wait``, block until running jobs have finished."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)

    def run_forever(self, echo: Callable[[str], Any] = print) -> None:
        """Start, print the next run times, and run until SIGTERM / SIGINT (then stop cleanly)."""
        signals = (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, lambda *_: self.stop()) for sig in signals}
        try:
            for name, when in self.start():
                echo(f"job {name}: next run {when.isoformat() if when else '(none)'}")
            echo("scheduler running; stop with Ctrl-C or SIGTERM")
            while not self._stop.is_set():
                self._stop.wait(0.5)  # a short wait keeps the main thread responsive to signals
            echo("stopping: waiting for running jobs to finish")
            self.shutdown(wait=True)
            echo("scheduler stopped")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _bind(job: ScheduleJob, config: AuditConfig, alert: Alert) -> Callable[[], bool]:
    def run() -> bool:
        t = time.perf_counter()
        ok = run_job(job, config, alert)
        log.info("job %s finished in %.1f s", job.name, time.perf_counter() - t)
        return ok

    return run
