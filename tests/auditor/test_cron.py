"""Cron expressions read as crontab(5) reads them (issue 17 item 6, issue 18 cron message).

Expected fire times are written by hand from a calendar (2024-06-02 was a Sunday) and checked
against croniter, an independent implementation of standard cron, for a set of expressions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from auditor.app.scheduler import AuditScheduler
from auditor.config import ScheduleJob
from auditor.cron import CronError, parse_cron
from auditor.errors import ConfigError
from tests.auditor.conftest import make_config

SUNDAY = datetime(2024, 6, 2, 0, 0, tzinfo=UTC)


def fire_times(expr: str, start: datetime, n: int, tz: str = "UTC") -> list[datetime]:
    trig = parse_cron(expr).trigger(ZoneInfo(tz))
    out, prev, now = [], None, start
    for _ in range(n):
        nxt = trig.get_next_fire_time(prev, now)
        out.append(nxt)
        prev, now = nxt, nxt + timedelta(seconds=1)
    return out


def test_weekdays_1_to_5_are_monday_to_friday_as_in_standard_cron():
    got = fire_times("30 2 * * 1-5", SUNDAY, 6)
    assert [(t.strftime("%a"), t.day, t.hour, t.minute) for t in got] == [
        ("Mon", 3, 2, 30), ("Tue", 4, 2, 30), ("Wed", 5, 2, 30), ("Thu", 6, 2, 30),
        ("Fri", 7, 2, 30), ("Mon", 10, 2, 30)]


@pytest.mark.parametrize("expr, days", [
    ("0 9 * * 0", ["Sun", "Sun"]),
    ("0 9 * * 7", ["Sun", "Sun"]),
    ("0 9 * * sat,sun", ["Sat", "Sun"]),
    ("0 9 * * MON-WED", ["Mon", "Tue"]),
    ("0 9 * * 6", ["Sat", "Sat"]),
])
def test_weekday_numbers_and_names(expr, days):
    assert [t.strftime("%a") for t in fire_times(expr, SUNDAY + timedelta(hours=10), 2)] == days


@pytest.mark.parametrize("expr", [
    "30 2 * * 1-5", "0 0 * * 0", "0 0 * * 7", "15 */6 * * 1,3,5", "0 12 1 * *",
    "0 0 13 * 5",  # day 13 OR Friday: both day fields restricted
    "*/20 8-17 * 6-8 mon-fri", "0 0 29 2 *", "5 4 * * sun", "0 22 * * 1-5/2", "@weekly",
])
def test_fire_times_match_croniter(expr):
    ref = croniter(expr, SUNDAY)
    expected = [ref.get_next(datetime) for _ in range(12)]
    assert fire_times(expr, SUNDAY + timedelta(seconds=1), 12) == expected


def test_a_day_matching_either_day_field_fires():
    # the 13th of the month OR any Friday (crontab(5)), not only Friday the 13th
    got = [t.date().isoformat() for t in fire_times("0 0 13 * 5", SUNDAY, 4)]
    assert got == ["2024-06-07", "2024-06-13", "2024-06-14", "2024-06-21"]


@pytest.mark.parametrize("expr, message", [
    ("30 25 * * *", "the hour field is 25, outside its range 0-23"),
    ("61 2 * * *", "the minute field is 61, outside its range 0-59"),
    ("0 2 32 * *", "the day-of-month field is 32, outside its range 1-31"),
    ("0 2 * 13 *", "the month field is 13, outside its range 1-12"),
    ("0 2 * * 8", "the day-of-week field is 8, outside its range 0-7 (0 and 7 are Sunday)"),
    ("0 2 * * 5-1", "the range '5-1' in the day-of-week field goes backwards"),
    ("0 2 * * funday", "'funday' in the day-of-week field is not a number"),
    ("0 2 * *", "is not a cron expression with five fields (minute hour day-of-month month "
                "day-of-week): it has 4"),
    ("0 0 31 2 *", "never fires: no month in the month field has the day(s) 31"),
    ("0 0 30,31 2 *", "never fires"),
    ("0 0 31 4,6,9,11 *", "never fires"),
])
def test_bad_expressions_name_the_field_and_its_range(expr, message):
    with pytest.raises(CronError) as err:
        parse_cron(expr)
    assert message in str(err.value)
    assert "five fields" not in str(err.value) or len(expr.split()) != 5


def test_day_31_in_a_month_that_has_it_is_fine_and_feb_29_fires_in_leap_years():
    parse_cron("0 0 31 1-3 *")
    got = fire_times("0 0 29 2 *", SUNDAY, 2)
    assert [t.date().isoformat() for t in got] == ["2028-02-29", "2032-02-29"]


def test_config_validation_refuses_a_bad_or_never_firing_cron(tmp_path):
    with pytest.raises(ConfigError) as err:
        make_config(tmp_path, schedule={"jobs": [{"name": "n", "cron": "30 25 * * *"}]})
    assert "schedule.jobs.0.cron" in str(err.value)
    assert "the hour field is 25, outside its range 0-23" in str(err.value)
    with pytest.raises(ConfigError, match="never fires"):
        make_config(tmp_path, schedule={"jobs": [{"name": "n", "cron": "0 0 31 2 *"}]})


def test_scheduler_uses_the_same_parser(tmp_path):
    cfg = make_config(tmp_path, schedule={"jobs": [{"name": "n", "cron": "30 2 * * 1-5"}]})
    cfg.schedule.jobs[0] = ScheduleJob.model_construct(name="n", cron="0 0 31 2 *",
                                                       timezone="UTC", config=None)
    with pytest.raises(ConfigError, match=r"schedule.jobs\[0\]` \('n'\).cron: '0 0 31 2 \*' "
                                          r"never fires"):
        AuditScheduler.from_config(cfg)


def test_scheduled_job_next_run_is_monday_not_tuesday(tmp_path):
    cfg = make_config(tmp_path, schedule={"jobs": [{"name": "n", "cron": "30 2 * * 1-5"}]})
    sched = AuditScheduler.from_config(cfg)
    job = sched.scheduler.get_job("n")
    nxt = job.trigger.get_next_fire_time(None, datetime(2024, 6, 1, 12, tzinfo=UTC))  # Saturday
    assert nxt == datetime(2024, 6, 3, 2, 30, tzinfo=UTC)


def test_misfire_grace_zero_starts_and_means_no_grace(tmp_path):
    cfg = make_config(tmp_path, schedule={"jobs": [{"name": "n", "cron": "0 3 * * *"}],
                                          "misfire_grace_s": 0})
    sched = AuditScheduler.from_config(cfg)
    try:
        sched.start()
        assert sched.scheduler.get_job("n").misfire_grace_time == 1
    finally:
        sched.shutdown(wait=False)
    with pytest.raises(ConfigError, match="misfire_grace_s"):
        make_config(tmp_path, schedule={"misfire_grace_s": -5})
