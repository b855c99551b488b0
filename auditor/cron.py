"""Standard five-field cron expressions, read the way crontab(5) reads them.

One parser for the scheduler, config validation and ``check-config``. It exists because
APScheduler's ``CronTrigger.from_crontab`` differs from cron in two ways that change when a job
runs: it numbers weekdays from Monday (0 = Monday, so ``1-5`` meant Tuesday to Saturday), and
it fires only when day-of-month AND day-of-week match, where cron fires when EITHER matches if
both are restricted. Here every field is expanded to its set of values, checked against its
range (the message names the field), and the trigger is built from those sets with weekday
names, so nothing depends on APScheduler's numbering. An expression that can never fire
(``0 0 31 2 *``) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import tzinfo

from apscheduler.triggers.base import BaseTrigger

#: (name, low, high) for the five fields, in order
FIELDS: tuple[tuple[str, int, int], ...] = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),  # 0 and 7 are Sunday
)
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
#: cron's weekday names by number (0 = Sunday); APScheduler takes the same names
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAMES = {
    "month": {m: i for i, m in enumerate(_MONTHS, 1)},
    "day-of-week": {d: i for i, d in enumerate(_WEEKDAYS)},
}
_MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February: leap years fire
_ITEM = re.compile(r"^(?:(?P<star>\*)|(?P<lo>\w+)(?:-(?P<hi>\w+))?)(?:/(?P<step>\d+))?$")
EXAMPLE = "e.g. '30 2 * * 1-5' (02:30 Monday to Friday)"


class CronError(ValueError):
    """A cron expression that is malformed, out of range or never fires (message says which)."""


@dataclass(frozen=True)
class CronSchedule:
    """A parsed expression: the set of values of each field, weekdays 0 = Sunday … 6."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    #: cron's rule: a day field starting with "*" does not restrict; when both day fields
    #: restrict, a day matching EITHER fires
    day_restricted: bool
    weekday_restricted: bool

    def trigger(self, timezone: tzinfo) -> BaseTrigger:
        """An APScheduler trigger firing exactly when cron would, in ``timezone``."""
        from apscheduler.triggers.combining import OrTrigger
        from apscheduler.triggers.cron import CronTrigger

        def join(values: frozenset[int]) -> str:
            return ",".join(str(v) for v in sorted(values))

        common = {"minute": join(self.minutes), "hour": join(self.hours),
                  "month": join(self.months), "timezone": timezone}
        days = join(self.days) if self.day_restricted else "*"
        weekdays = (",".join(_WEEKDAYS[d] for d in sorted(self.weekdays))
                    if self.weekday_restricted else "*")
        if self.day_restricted and self.weekday_restricted:
            return OrTrigger([CronTrigger(day=days, day_of_week="*", **common),
                              CronTrigger(day="*", day_of_week=weekdays, **common)])
        return CronTrigger(day=days, day_of_week=weekdays, **common)


def _number(text: str, field: str, low: int, high: int, expr: str) -> int:
    names = _NAMES.get(field, {})
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        allowed = f"{low}-{high}" + (f" or a name ({', '.join(names)})" if names else "")
        raise CronError(f"{expr!r}: {text!r} in the {field} field is not a number; use {allowed}")
    value = int(text)
    if not low <= value <= high:
        extra = " (0 and 7 are Sunday)" if field == "day-of-week" else ""
        raise CronError(
            f"{expr!r}: the {field} field is {value}, outside its range {low}-{high}{extra}"
        )
    return value


def _field(text: str, field: str, low: int, high: int, expr: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        m = _ITEM.match(item)
        if not m:
            raise CronError(
                f"{expr!r}: {item!r} in the {field} field is not a value, range (a-b), list "
                f"(a,b) or step (*/n); {EXAMPLE}"
            )
        if m["star"]:
            lo, hi = low, high
        else:
            lo = _number(m["lo"], field, low, high, expr)
            hi = _number(m["hi"], field, low, high, expr) if m["hi"] else (
                high if m["step"] else lo)
        if hi < lo:
            raise CronError(f"{expr!r}: the range {item!r} in the {field} field goes backwards")
        step = int(m["step"]) if m["step"] else 1
        if step == 0:
            raise CronError(f"{expr!r}: step 0 in the {field} field")
        values.update(range(lo, hi + 1, step))
    if field == "day-of-week" and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values)


def parse_cron(expression: str) -> CronSchedule:
    """Parse and check a five-field cron expression (or @daily and friends).

    Raises :class:`CronError` naming the field and its range, or saying that the expression
    never fires.
    """
    expr = str(expression).strip()
    text = _MACROS.get(expr.lower(), expr)
    parts = text.split()
    if len(parts) != 5:
        raise CronError(
            f"{expr!r} is not a cron expression with five fields (minute hour day-of-month "
            f"month day-of-week): it has {len(parts)}; {EXAMPLE}"
        )
    sets = [_field(p, *spec, expr) for p, spec in zip(parts, FIELDS, strict=True)]
    sched = CronSchedule(expr, *sets, day_restricted=not parts[2].startswith("*"),
                         weekday_restricted=not parts[4].startswith("*"))
    if sched.day_restricted and not sched.weekday_restricted and not any(
        d <= _DAYS_IN_MONTH[m - 1] for m in sched.months for d in sched.days
    ):
        raise CronError(
            f"{expr!r} never fires: no month in the month field has the day(s) "
            f"{', '.join(str(d) for d in sorted(sched.days))}"
        )
    return sched


def cron_trigger(expression: str, timezone: tzinfo) -> BaseTrigger:
    """The APScheduler trigger for ``expression`` (see :func:`parse_cron`)."""
    return parse_cron(expression).trigger(timezone)


__all__ = ["CronError", "CronSchedule", "cron_trigger", "parse_cron"]
