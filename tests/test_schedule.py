"""Run counts and dates agree with Mage's own numbers and with a plain step-by-step walk."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice

import pytest

from backfill_sync.models import IntervalType, Schedule
from backfill_sync.schedule import count_runs, run_dates


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def schedule(start: str, end: str, interval_type: IntervalType, units: int) -> Schedule:
    return Schedule(at(start), at(end), interval_type, units)


def walk_count(s: Schedule) -> int:
    """The reference: Mage's while-loop, one date at a time."""
    return sum(1 for _ in run_dates(s))


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        pytest.param(schedule("2023-03-01", "2023-03-05", "hour", 4), 25, id="api-docs-total-run-count"),
        pytest.param(
            schedule("2024-01-02 06:30", "2024-01-04 06:30", "hour", 6), 9, id="mage-api-md-4.5-detail"
        ),
        pytest.param(schedule("2024-01-01", "2024-01-02 02:00", "custom", 5400), 18, id="custom-seconds"),
        pytest.param(schedule("2024-01-01 00:00", "2024-01-01 02:00", "custom", 5400), 2, id="custom-2h"),
        pytest.param(schedule("2024-01-01", "2024-01-05", "day", 1), 5, id="inclusive-end"),
        pytest.param(schedule("2024-01-10", "2024-01-01", "day", 1), 0, id="end-before-start"),
        pytest.param(schedule("2024-01-01", "2024-01-01", "second", 1), 1, id="single-instant"),
        pytest.param(schedule("2024-01-31", "2024-06-29", "month", 1), 6, id="month-drift-hits-end"),
        pytest.param(schedule("2024-01-31", "2024-06-28", "month", 1), 5, id="month-drift-misses-end"),
        pytest.param(schedule("2000-01-01", "9999-12-31", "second", 1), 252_455_529_601, id="huge-fixed"),
        pytest.param(schedule("2024-02-29", "2030-03-01", "year", 1), 7, id="leap-day-yearly"),
        pytest.param(schedule("2024-01-01", "9999-01-01", "week", 2**31 - 1), 1, id="step-beyond-datetime"),
    ],
)
def test_count_runs_matches_mage(window: Schedule, expected: int) -> None:
    assert count_runs(window) == expected


def test_month_end_drifts_like_relativedelta() -> None:
    dates = list(islice(run_dates(schedule("2024-01-31", "2024-12-31", "month", 1)), 6))
    assert [d.date().isoformat() for d in dates] == [
        "2024-01-31",
        "2024-02-29",
        "2024-03-29",
        "2024-04-29",
        "2024-05-29",
        "2024-06-29",
    ]


def test_custom_interval_counts_seconds() -> None:
    dates = list(run_dates(schedule("2024-01-01 00:00", "2024-01-01 02:00", "custom", 5400)))
    assert [d.strftime("%H:%M") for d in dates] == ["00:00", "01:30"]


@pytest.mark.parametrize(
    "window",
    [
        pytest.param(schedule("2024-01-31", "2031-05-30", "month", 1), id="monthly-31st"),
        pytest.param(schedule("2024-01-31", "2200-01-31", "month", 6), id="half-yearly-31st-never-drifts"),
        pytest.param(schedule("2000-02-29", "2410-03-01", "year", 4), id="quadrennial-29th-century-drift"),
        pytest.param(schedule("2000-02-29", "3000-03-01", "year", 16), id="every-16-years-stays-leap"),
        pytest.param(schedule("2023-08-30", "2040-02-28", "month", 5), id="five-monthly-30th"),
        pytest.param(schedule("1999-12-31 23:59:59", "2120-01-01", "month", 7), id="seven-monthly"),
        pytest.param(schedule("9990-01-31", "9999-12-31", "month", 1), id="up-to-year-9999"),
    ],
)
def test_calendar_count_equals_walk(window: Schedule) -> None:
    assert count_runs(window) == walk_count(window)
