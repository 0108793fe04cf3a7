"""``schedule.cron``: the one parser that both the config check and ``tickcast serve`` use.

Five fields as in crontab (minute hour day month weekday), or six with a leading second (a single
number 0-59: the run starts at that second of its minute; still at most one run a minute).

The weekday field means what it means in crontab, numbers included: 0 and 7 are Sunday, 1 is Monday.
APScheduler 3 counts from Monday (its ``from_crontab`` passes numbers through, so ``1-5`` would be
Tuesday to Saturday); numbers are translated here into the days they name in crontab.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a type only: the scheduler is imported when a trigger is built
    from apscheduler.triggers.cron import CronTrigger

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab's numbering: 0 (and 7) is Sunday


def cron_trigger(cron: str, timezone: str) -> CronTrigger:
    """The trigger for ``cron`` in ``timezone``; ValueError (one line) if the expression is invalid."""
    from apscheduler.triggers.cron import CronTrigger  # a few hundredths of a second: not for --help

    fields = cron.split()
    if len(fields) not in (5, 6):
        raise ValueError(
            f"five fields (minute hour day month weekday) or six (second first) were expected, got {len(fields)}"
        )
    second = "0"
    if len(fields) == 6:
        second = fields.pop(0)
        if not (second.isdigit() and int(second) < 60):
            raise ValueError(f"the second field must be one number from 0 to 59, got {second!r}")
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        second=int(second),
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=crontab_weekdays(weekday),
        timezone=timezone,
    )


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field as APScheduler reads it: unchanged without numbers (names and ``*``
    mean the same to both), else the days it names, as a list of names."""
    if not any(ch.isdigit() for ch in field):
        return field
    days: set[int] = set()
    for part in field.split(","):
        span, slash, step_text = part.partition("/")
        step = _number(step_text, "step", 1, 7) if slash else 1
        if span == "*":
            first, last = 0, 6
        else:
            low, dash, high = span.partition("-")
            first = _day(low)
            last = _day(high) if dash else (6 if slash else first)
            if dash and last < first:
                if last == 0:  # ``5-7`` or ``fri-sun``: 7 (Sunday) ends the week
                    last = 7
                else:
                    raise ValueError(f"weekday range {span!r} runs backwards")
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(DAY_NAMES[d] for d in sorted(days))


def _day(text: str) -> int:
    if text.lower() in DAY_NAMES:
        return DAY_NAMES.index(text.lower())
    if not text.isdigit() or int(text) > 7:
        raise ValueError(f"a weekday is a number from 0 to 7 (0 and 7: Sunday) or a name such as mon, got {text!r}")
    return int(text)


def _number(text: str, what: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"a {what} must be a number from {low} to {high}, got {text!r}")
    return int(text)
