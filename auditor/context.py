"""The audit context: the day the audit is "as of", the process config, and day arithmetic.

All "days since" / "days until" figures are whole calendar days in the audit time zone, so a
deal touched yesterday evening is 1 day old this morning, whatever the hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pandas as pd

from auditor.config import AuditSection, ProcessSection


@dataclass
class AuditContext:
    as_of: pd.Timestamp  # naive midnight of the audit day
    timezone: str = "UTC"
    process: ProcessSection = field(default_factory=ProcessSection)
    #: the [audit] options that shape judgement (fix window, strict history, imports)
    audit: AuditSection = field(default_factory=AuditSection)

    @classmethod
    def create(
        cls,
        as_of: date | datetime | str | None = None,
        timezone: str = "UTC",
        process: ProcessSection | None = None,
        audit: AuditSection | None = None,
    ) -> AuditContext:
        if as_of is None:
            as_of = datetime.now(ZoneInfo(timezone)).date()
        day = pd.Timestamp(as_of)
        if day.tzinfo is not None:
            day = day.tz_convert(timezone).tz_localize(None)
        return cls(day.normalize(), timezone, process or ProcessSection(), audit or AuditSection())

    def calendar_day(self, col: pd.Series) -> pd.Series:
        """Calendar day (naive midnight) of a timestamp column in the audit time zone."""
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            return col.dt.tz_convert(self.timezone).dt.tz_localize(None).dt.normalize()
        return col.dt.normalize()

    def days_since(self, col: pd.Series) -> pd.Series:
        """Whole days from the column's calendar day to the audit day (Int64, NA stays NA)."""
        delta = self.as_of - self.calendar_day(col)
        return (delta.dt.days).astype("Int64")

    def days_until(self, col: pd.Series) -> pd.Series:
        return (-self.days_since(col)).astype("Int64")
