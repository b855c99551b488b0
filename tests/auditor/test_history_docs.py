"""The commented [history] / [schedule] example stays valid and mentions every key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from auditor.app.scheduler import AuditScheduler
from auditor.config import HistorySection, ScheduleJob, ScheduleSection, parse_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "config" / "history-schedule.toml"


def test_example_validates_and_schedules(tmp_path):
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    cfg = parse_config(data, origin=str(EXAMPLE), base_dir=tmp_path)
    assert cfg.history.trend_runs == 14
    assert [j.name for j in cfg.schedule.jobs] == ["nightly"]
    sched = AuditScheduler.from_config(cfg)
    assert [j.id for j in sched.scheduler.get_jobs()] == ["nightly"]


def test_example_mentions_every_key():
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = set(re.findall(r"^#?\s*([a-z_]+)\s*=", text, flags=re.M))
    if "[[schedule.jobs]]" in text:
        keys.add("jobs")
    for model in (HistorySection, ScheduleSection, ScheduleJob):
        assert set(model.model_fields) <= keys, model.__name__
