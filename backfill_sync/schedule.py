"""Run-date arithmetic exactly as Mage 0.9.80 does it (orchestration/backfills/service.py).

Mage starts at `start_datetime` and keeps adding one step while the date is <= `end_datetime` (the end is
inclusive). Fixed-length steps are `timedelta`s (`custom` counts seconds); month and year steps are
`relativedelta`s applied to the previous date, so a day past the 28th drifts down and never comes back
(2024-01-31 monthly: 01-31, 02-29, 03-29, ...). Counting is arithmetic so that a window of millions of
runs costs no more than one of ten.
"""

from __future__ import annotations

import calendar
from collections.abc import Collection, Iterator
from datetime import datetime, timedelta
from typing import Any

from backfill_sync.models import Schedule

_FIXED_UNITS = {
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "custom": timedelta(seconds=1),
}
# Within this many calendar steps every month of the step's cycle (at most 12) has been visited, so a day
# that could drift has drifted, except a 29th that so far met only leap-year Februaries.
_SETTLE_STEPS = 48


def count_runs(schedule: Schedule) -> int:
    """How many pipeline runs Mage creates when this backfill starts."""
    if schedule.end < schedule.start:
        return 0
    try:
        step = fixed_step(schedule)
    except OverflowError:  # a step longer than any datetime span: only the start date is a run
        return 1
    if step is not None:
        return (schedule.end - schedule.start) // step + 1
    return _count_calendar_runs(schedule)


def run_dates(schedule: Schedule) -> Iterator[datetime]:
    """Mage's execution dates, lazily, in order."""
    current: datetime | None = schedule.start
    while current is not None and current <= schedule.end:
        yield current
        current = next_run_date(schedule, current)


def run_variables(schedule: Schedule, wanted: Collection[datetime]) -> dict[datetime, dict[str, Any]]:
    """The variables Mage's start gives the runs of these dates of the window (`__build_variables_list`).

    Each run knows its interval: it ends at the next date of the window; the last date's interval is as
    long as the one before it; a window of one date has no interval at all (nulls). The previous start is
    the start minus the interval's length, except on the last date, where it is the date before. Mage
    measures intervals with `.timestamp()` of naive datetimes, that is in the server's local time zone;
    on a server running in UTC (Mage's images do) that is the plain difference used here.
    """
    found: dict[datetime, dict[str, Any]] = {}
    dates = run_dates(schedule)
    previous: datetime | None = None
    current = next(dates, None)
    while current is not None and len(found) < len(wanted):
        following = next(dates, None)
        if current in wanted:
            found[current] = _variables_of(current, previous, following)
        previous, current = current, following
    return found


def _variables_of(date: datetime, before: datetime | None, after: datetime | None) -> dict[str, Any]:
    end: datetime | None = None
    seconds: float | None = None
    previous: datetime | None = None
    if after is not None:
        end = after
        seconds = (after - date).total_seconds()
    elif before is not None:
        previous = before
        seconds = (date - before).total_seconds()
        end = date + timedelta(seconds=seconds)
    if previous is None and seconds:
        previous = date - timedelta(seconds=seconds)
    return {
        "ds": date.strftime("%Y-%m-%d"),
        "execution_date": _naive_iso(date),
        "hr": date.strftime("%H"),
        "interval_end_datetime": None if end is None else _naive_iso(end),
        "interval_seconds": seconds,
        "interval_start_datetime": _naive_iso(date),
        "interval_start_datetime_previous": None if previous is None else _naive_iso(previous),
    }


def _naive_iso(value: datetime) -> str:
    """Mage's form inside run variables: ISO with a `T`, no offset (its datetimes are naive UTC)."""
    return value.replace(tzinfo=None).isoformat()


def fixed_step(schedule: Schedule) -> timedelta | None:
    """The constant step between runs, or None for month and year steps."""
    unit = _FIXED_UNITS.get(schedule.interval_type)
    return None if unit is None else unit * schedule.interval_units


def next_run_date(schedule: Schedule, current: datetime) -> datetime | None:
    """The date after `current`, or None when it would pass the last representable date."""
    try:
        step = fixed_step(schedule)
        if step is not None:
            return current + step
        return add_months(current, _months_per_step(schedule))
    except OverflowError:
        return None


def add_months(value: datetime, months: int) -> datetime:
    """`value + relativedelta(months=months)`: the day is clamped to the target month's length."""
    index = value.year * 12 + value.month - 1 + months
    year, month_zero = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise OverflowError("date value out of range")
    month = month_zero + 1
    day = min(value.day, calendar.monthrange(year, month)[1])
    return value.replace(year=year, month=month, day=day)


def _months_per_step(schedule: Schedule) -> int:
    return schedule.interval_units * (12 if schedule.interval_type == "year" else 1)


def _count_calendar_runs(schedule: Schedule) -> int:
    months = _months_per_step(schedule)
    count = 0
    current: datetime | None = schedule.start
    for _ in range(_SETTLE_STEPS):
        if current is None or current > schedule.end:
            return count
        count += 1
        current = next_run_date(schedule, current)
    if current is None or current > schedule.end:
        return count
    if current.day > 28:
        # A 29th that met only leap-year Februaries may still drift at a century: step it out. The step
        # is then a multiple of four years, so this is at most a few thousand iterations.
        return count + sum(1 for _ in run_dates(_from(schedule, current)))
    return count + _count_fixed_day(current, schedule.end, months)


def _count_fixed_day(current: datetime, end: datetime, months: int) -> int:
    """Runs at current + k*months (k >= 0) up to end, when the day of month can no longer drift."""
    span = (end.year * 12 + end.month) - (current.year * 12 + current.month)
    steps = span // months
    if add_months(current, steps * months) > end:
        steps -= 1
    return steps + 1


def _from(schedule: Schedule, start: datetime) -> Schedule:
    return Schedule(start, schedule.end, schedule.interval_type, schedule.interval_units)
