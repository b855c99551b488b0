"""The built-in scheduler: no overlap, clean shutdown, failures alert (issue 7, item 5)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from datetime import date, datetime

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from auditor.app.alerts import send_alert
from auditor.app.scheduler import AuditScheduler, JobSpec, cron_trigger, run_job
from auditor.config import ScheduleJob, parse_config
from auditor.errors import ConfigError, ConnectorError
from auditor.history import HistoryStore
from connectors.demo import generate_demo_org
from tests.auditor.conftest import AS_OF, make_config


class SlowJob:
    """Records how many runs overlap; each run takes ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.started = 0
        self.finished = 0

    def __call__(self) -> None:
        with self.lock:
            self.active += 1
            self.started += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(self.seconds)
        with self.lock:
            self.active -= 1
            self.finished += 1


def test_slow_job_on_a_fast_trigger_never_overlaps_and_shutdown_waits_for_it():
    job = SlowJob(0.6)
    sched = AuditScheduler(misfire_grace_s=1)
    sched.add(JobSpec("fast", IntervalTrigger(seconds=0.2), job))
    sched.start()
    time.sleep(1.5)
    sched.shutdown(wait=True)
    assert job.max_active == 1
    assert job.started >= 2
    assert job.finished == job.started  # the run in progress completed before shutdown returned
    assert job.active == 0
    assert not sched.scheduler.running
    assert ("fast", "still running") in sched.skipped  # the due-but-overlapping runs


def test_sigterm_stops_run_forever_cleanly_after_the_running_job():
    job = SlowJob(0.4)
    sched = AuditScheduler()
    sched.add(JobSpec("fast", IntervalTrigger(seconds=0.2), job))
    lines: list[str] = []
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    before = signal.getsignal(signal.SIGTERM)
    timer.start()
    try:
        sched.run_forever(echo=lines.append)
    finally:
        timer.cancel()
    assert lines[0].startswith("job fast: next run 20")
    assert lines[-2:] == ["stopping: waiting for running jobs to finish", "scheduler stopped"]
    assert job.started >= 1 and job.finished == job.started and job.max_active == 1
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored


def test_cron_jobs_from_config_print_next_run_times_in_their_time_zone(tmp_path):
    cfg = make_config(
        tmp_path,
        schedule={"jobs": [{"name": "nightly", "cron": "30 2 * * *", "timezone": "Europe/Berlin"}]},
    )
    sched = AuditScheduler.from_config(cfg)
    try:
        ((name, when),) = sched.start()
    finally:
        sched.shutdown(wait=False)
    assert name == "nightly"
    assert (when.hour, when.minute, str(when.tzinfo)) == (2, 30, "Europe/Berlin")


def test_job_defaults_forbid_overlap_and_coalesce_misfires(tmp_path):
    cfg = make_config(
        tmp_path,
        schedule={"jobs": [{"name": "n", "cron": "0 3 * * 1-5"}], "misfire_grace_s": 900},
    )
    sched = AuditScheduler.from_config(cfg)
    sched.scheduler.start(paused=True)
    try:
        job = sched.scheduler.get_job("n")
        assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 900)
    finally:
        sched.shutdown(wait=False)


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"name": "n", "cron": "0 2 * * *", "timezone": "Mars/Base"}, r"unknown time zone"),
        ({"name": "n", "cron": "0 2 * * *", "config": "nope.toml"}, r"nope.toml does not exist"),
    ],
)
def test_bad_jobs_are_config_errors_naming_the_key(tmp_path, job, message):
    cfg = make_config(tmp_path, schedule={"jobs": [job]})
    with pytest.raises(ConfigError, match=message):
        AuditScheduler.from_config(cfg)


@pytest.mark.parametrize(("cron", "message"), [
    ("61 2 * * *", r"schedule.jobs.0.cron`: .*'61 2 \* \* \*': the minute field is 61"),
    ("0 2 * *", r"is not a cron expression with five fields"),
])
def test_bad_cron_is_refused_when_the_config_is_read(tmp_path, cron, message):
    # the same parser (auditor.cron) checks it in the scheduler: see tests/auditor/test_cron.py
    with pytest.raises(ConfigError, match=message):
        make_config(tmp_path, schedule={"jobs": [{"name": "n", "cron": cron}]})


def test_no_jobs_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"no jobs to schedule; add a `\[\[schedule.jobs\]\]`"):
        AuditScheduler.from_config(make_config(tmp_path))


def test_cron_trigger_fires_at_the_configured_local_time():
    trig = cron_trigger(
        ScheduleJob(name="n", cron="0 6 * * *", timezone="America/New_York"), 0, "x.toml"
    )
    nxt = trig.get_next_fire_time(None, datetime.fromisoformat("2026-06-15T12:00:00+00:00"))
    assert nxt.isoformat() == "2026-06-16T06:00:00-04:00"


def test_failed_scheduled_run_is_logged_recorded_and_alerted(tmp_path, scripted, caplog):
    scripted.script = [ConnectorError("HubSpot: HTTP 401 for GET /crm/v3/objects/deals")]
    cfg = make_config(tmp_path)
    sent: list[tuple[str, str]] = []
    ok = run_job(
        ScheduleJob(name="nightly", cron="0 2 * * *"),
        cfg,
        alert=lambda c, s, b: sent.append((s, b)),
    )
    assert ok is False
    assert sent[0][0] == "crm-audit: scheduled job nightly failed"
    assert "Error: HubSpot: HTTP 401 for GET /crm/v3/objects/deals" in sent[0][1]
    assert "scheduled job nightly failed: HubSpot: HTTP 401" in caplog.text
    with HistoryStore(tmp_path / "history.sqlite") as store:
        assert store.runs()[0]["status"] == "failed"


def test_successful_scheduled_run_sends_no_alert(tmp_path, scripted):
    scripted.script = [generate_demo_org(200, seed=1, as_of=date.fromisoformat(AS_OF)).snapshot]
    sent: list[str] = []
    ok = run_job(
        ScheduleJob(name="n", cron="0 2 * * *"),
        make_config(tmp_path),
        alert=lambda c, s, b: sent.append(s),
    )
    assert ok is True and sent == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_alert_email_is_sent_over_smtp_with_secrets_redacted(tmp_path):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Collect(Message):
        def handle_message(self, message):  # noqa: ANN001, ANN202
            received.append(message)

    port = _free_port()
    ctl = Controller(Collect(), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        cfg = parse_config(
            {
                "delivery": {
                    "smtp": {
                        "host": "127.0.0.1",
                        "port": port,
                        "security": "none",
                        "sender": "auditor@example.com",
                    }
                },
                "schedule": {"alert_emails": ["ops@example.com", "lead@example.com"]},
            }
        )
        from auditor.secrets import register_secret

        register_secret("s3cr3t-token-value")
        assert send_alert(cfg, "job failed", "token s3cr3t-token-value was refused") is True
    finally:
        ctl.stop()
    assert sorted(m["To"] for m in received) == ["lead@example.com", "ops@example.com"]
    for msg in received:
        assert msg["Subject"] == "job failed"
        assert msg["From"] == "auditor@example.com"
        assert msg.get_payload(decode=True).decode().strip() == "token *** was refused"


def test_alert_without_smtp_is_only_logged(caplog):
    cfg = parse_config({"schedule": {"alert_emails": ["ops@example.com"]}})
    assert send_alert(cfg, "job failed", "body") is False
    assert "alert (no email configured): job failed" in caplog.text


def test_alert_to_an_unreachable_server_is_logged_not_raised(caplog):
    cfg = parse_config(
        {
            "delivery": {
                "smtp": {
                    "host": "127.0.0.1",
                    "port": _free_port(),
                    "security": "none",
                    "sender": "a@example.com",
                    "timeout_s": 2,
                }
            },
            "schedule": {"alert_emails": ["ops@example.com"]},
        }
    )
    assert send_alert(cfg, "job failed", "body") is False
    assert (
        "could not send the alert to ops@example.com: could not connect to the SMTP server"
        in caplog.text
    )
