"""Run-date arithmetic of Mage backfills (PROVISIONAL stand-in until the lead's schedule.py lands on main)."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from backfill_sync.models import Schedule

_FIXED_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800, "custom": 1}


def count_runs(schedule: Schedule) -> int:
    """How many execution dates Mage builds: start, start+step, ... while <= end (inclusive)."""
    if schedule.end < schedule.start:
        return 0
    if schedule.interval_type in _FIXED_SECONDS:
        # Integer microseconds: a timedelta of a huge step would overflow.
        step = _FIXED_SECONDS[schedule.interval_type] * schedule.interval_units * 1_000_000
        return _micros(schedule.end - schedule.start) // step + 1
    months = schedule.interval_units * (12 if schedule.interval_type == "year" else 1)
    count, current = 0, schedule.start
    while current <= schedule.end:
        count += 1
        stepped = _add_months(current, months)
        if stepped is None:
            break
        current = stepped
    return count


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _add_months(value: datetime, months: int) -> datetime | None:
    index = value.year * 12 + value.month - 1 + months
    year, month = divmod(index, 12)
    if year > 9999:
        return None
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)
