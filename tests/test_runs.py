"""The run-based rules, from run lists like those real Mage 0.9.80 produced (mage-runs-api.md §4.8-4.13).

Every trap of Mage's own `status` is here: `failed` while runs still run (§6.11), `running` forever after
one run was cancelled (§6.10), every date twice after a repeated start (§6.9), runs that never start under
an inactive trigger (§6.12), and dates that left the window but still count in `run_status_counts`.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backfill_sync.models import IntervalType, Schedule
from backfill_sync.runs import (
    Run,
    date_ranges,
    latest_runs,
    progress_from_counts,
    runs_to_retry,
    verdict,
    window_change,
    window_progress,
)
from backfill_sync.schedule import run_variables


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def window(start: str, end: str, interval_type: IntervalType = "day", units: int = 1) -> Schedule:
    return Schedule(at(start), at(end), interval_type, units)


def run(run_id: int, date: str, status: str, updated: str | None = None) -> Run:
    return Run(run_id, at(date), status, None if updated is None else at(updated))


JAN_1_5 = window("2024-01-01", "2024-01-05")
ALL_DONE = [run(i, f"2024-01-0{i}", "completed") for i in range(1, 6)]


# -- the latest run of a date ------------------------------------------------------------------------


def test_the_highest_id_of_a_date_is_its_latest_run():
    runs = [
        run(5, "2024-01-05", "completed"),
        run(22, "2024-01-05", "failed"),
        run(4, "2024-01-04", "failed"),
    ]
    latest = latest_runs(runs)
    assert {date.day: found.id for date, found in latest.items()} == {5: 22, 4: 4}


def test_runs_without_a_date_are_ignored():
    assert latest_runs([Run(1, None, "completed")]) == {}


# -- progress and the finished rule ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("runs", "trigger_active", "expected"),
    [
        pytest.param(ALL_DONE, None, ("completed", True, {"completed": 5}), id="all-completed"),
        pytest.param(
            [run(1, "2024-01-01", "failed"), run(2, "2024-01-02", "running"), *ALL_DONE[2:]],
            None,
            ("running", False, {"failed": 1, "running": 1, "completed": 3}),
            id="mage-says-failed-while-runs-still-run",
        ),
        pytest.param(
            [run(1, "2024-01-01", "cancelled"), *ALL_DONE[1:]],
            None,
            ("incomplete", True, {"cancelled": 1, "completed": 4}),
            id="one-run-cancelled-mage-says-running-forever",
        ),
        pytest.param(
            [*ALL_DONE, *(run(10 + i, f"2024-01-0{i}", "running") for i in range(1, 6))],
            None,
            ("running", False, {"running": 5}),
            id="started-twice-each-date-counts-once",
        ),
        pytest.param(
            [*ALL_DONE, *(run(10 + i, f"2024-01-0{i}", "completed") for i in range(1, 6))],
            None,
            ("completed", True, {"completed": 5}),
            id="started-twice-all-done",
        ),
        pytest.param(
            [*ALL_DONE[:4], run(9, "2024-01-05", "initial")],
            False,
            ("incomplete", True, {"completed": 4, "initial": 1}),
            id="initial-under-an-inactive-trigger-is-stuck-not-waited-on",
        ),
        pytest.param(
            [*ALL_DONE[:4], run(9, "2024-01-05", "initial")],
            True,
            ("running", False, {"completed": 4, "initial": 1}),
            id="initial-under-an-active-trigger-will-start",
        ),
        pytest.param(
            [*ALL_DONE, run(7, "2024-01-07", "running"), run(8, "2023-12-31", "failed")],
            None,
            ("completed", True, {"completed": 5}),
            id="dates-outside-the-window-do-not-count",
        ),
        pytest.param(
            [run(1, "2024-01-01 06:00:00", "running"), *ALL_DONE],
            None,
            ("completed", True, {"completed": 5}),
            id="dates-off-the-grid-do-not-count",
        ),
        pytest.param(ALL_DONE[:3], None, ("incomplete", True, {"completed": 3}), id="dates-without-a-run"),
    ],
)
def test_progress_and_verdict(runs, trigger_active, expected):
    progress = window_progress(JAN_1_5, runs, trigger_active=trigger_active)
    word, finished, counts = expected
    assert (verdict("failed", progress), progress.finished, dict(progress.counts)) == (word, finished, counts)
    assert progress.total == 5


def test_failed_cancelled_and_stuck_dates_are_named():
    runs = [
        run(1, "2024-01-01", "failed"),
        run(2, "2024-01-02", "cancelled"),
        run(3, "2024-01-03", "initial"),
        run(6, "2024-01-01", "failed"),
    ]
    progress = window_progress(JAN_1_5, runs, trigger_active=False)
    assert progress.failed_dates == (at("2024-01-01"),)
    assert progress.cancelled_dates == (at("2024-01-02"),)
    assert progress.stuck_dates == (at("2024-01-03"),)
    assert (progress.without_run, progress.unfinished, progress.finished_dates) == (2, 0, 2)


@pytest.mark.parametrize(
    ("status", "counts", "declared_cancelled", "expected"),
    [
        pytest.param(None, {}, False, "not_started", id="never-started"),
        pytest.param("cancelled", {"cancelled": 5}, False, "cancelled", id="cancelled-in-mage"),
        pytest.param("failed", {"failed": 2, "completed": 3}, True, "cancelled", id="declared-cancelled"),
        pytest.param("initial", {"initial": 5}, True, "running", id="declared-cancelled-but-running"),
        pytest.param(
            "completed", {"completed": 5}, True, "completed", id="declared-cancelled-after-it-completed"
        ),
        pytest.param("initial", {}, False, "completed", id="started-with-no-dates"),
    ],
)
def test_verdict_of_a_status(status, counts, declared_cancelled, expected):
    total = sum(counts.values())
    progress = progress_from_counts(total, counts)
    assert verdict(status, progress, declared_cancelled=declared_cancelled) == expected


def test_progress_from_counts_knows_no_dates():
    progress = progress_from_counts(31, {"completed": 28, "failed": 3})
    assert (progress.finished, progress.dates_known, progress.failed_dates) == (True, False, ())


# -- which dates retry_failed_before retries ---------------------------------------------------------

BEFORE = at("2024-06-01 12:00:00")


@pytest.mark.parametrize(
    ("runs", "backfill_cancelled", "retried"),
    [
        pytest.param(
            [run(1, "2024-01-01", "failed", "2024-06-01 11:59:59"), run(2, "2024-01-02", "completed")],
            False,
            [1],
            id="failed-before-the-instant",
        ),
        pytest.param(
            [run(1, "2024-01-01", "failed", "2024-06-01 12:00:00")],
            False,
            [],
            id="failed-at-the-instant-is-not-before-it",
        ),
        pytest.param(
            [run(1, "2024-01-01", "failed", "2024-06-01 12:30:00")],
            False,
            [],
            id="failed-again-after-the-instant",
        ),
        pytest.param(
            [run(1, "2024-01-01", "failed", "2024-05-01"), run(9, "2024-01-01", "completed", "2024-05-02")],
            False,
            [],
            id="superseded-by-a-newer-run",
        ),
        pytest.param(
            [run(1, "2024-01-01", "running", "2024-05-01")], False, [], id="still-running-is-not-failed"
        ),
        pytest.param(
            [run(1, "2024-01-01", "cancelled", "2024-05-01"), run(2, "2024-01-02", "failed", "2024-05-01")],
            False,
            [1, 2],
            id="cancelled-one-by-one-is-retried",
        ),
        pytest.param(
            [run(1, "2024-01-01", "cancelled", "2024-05-01"), run(2, "2024-01-02", "failed", "2024-05-01")],
            True,
            [2],
            id="cancelled-with-the-backfill-is-not",
        ),
        pytest.param(
            [run(1, "2023-12-31", "failed", "2024-05-01")], False, [], id="dates-outside-the-window"
        ),
        pytest.param([run(1, "2024-01-01", "failed")], False, [], id="no-updated-at-no-retry"),
    ],
)
def test_runs_to_retry(runs, backfill_cancelled, retried):
    chosen = runs_to_retry(JAN_1_5, runs, BEFORE, backfill_cancelled=backfill_cancelled)
    assert [found.id for found in chosen] == retried


def test_the_instant_counts_in_whole_seconds_as_mage_stores_run_times():
    # A failure at 12:00:00.7 is stored as 12:00:00: an instant of 12:00:00.5 must not retry it.
    failed = [run(1, "2024-01-01", "failed", "2024-06-01 12:00:00")]
    assert runs_to_retry(JAN_1_5, failed, at("2024-06-01 12:00:00.5"), backfill_cancelled=False) == ()


# -- dates a window gains and loses -----------------------------------------------------------------


def days(change):
    return [date.strftime("%m-%d") for date in change.gained]


def test_an_extended_end_gains_exactly_the_new_dates():
    change = window_change(window("2024-01-01", "2024-01-07"), ALL_DONE)
    assert (days(change), change.lost, change.moved) == (["01-06", "01-07"], (), False)


def test_an_earlier_start_gains_dates_before():
    change = window_change(window("2023-12-30", "2024-01-05"), ALL_DONE)
    assert days(change) == ["12-30", "12-31"]


def test_a_shrunk_window_cancels_only_unfinished_runs_of_lost_dates():
    runs = [*ALL_DONE[:3], run(4, "2024-01-04", "running"), run(5, "2024-01-05", "completed")]
    change = window_change(window("2024-01-01", "2024-01-03"), runs)
    assert ([lost.id for lost in change.lost], change.gained) == ([4], ())


def test_dates_back_in_the_window_with_cancelled_runs_run_again():
    # 01-01..01-05 was narrowed to 01-03, which cancelled 01-04 and 01-05; 01-04 comes back.
    runs = [*ALL_DONE[:3], run(4, "2024-01-04", "cancelled"), run(5, "2024-01-05", "cancelled")]
    change = window_change(window("2024-01-01", "2024-01-04"), runs, window("2024-01-01", "2024-01-03"))
    assert (days(change), change.returning, change.lost) == (["01-04"], (at("2024-01-04"),), ())


def test_a_cancelled_date_that_stays_in_the_window_is_left_to_retries():
    runs = [*ALL_DONE[:2], run(3, "2024-01-03", "cancelled"), *ALL_DONE[3:]]
    change = window_change(window("2024-01-01", "2024-01-06"), runs, window("2024-01-01", "2024-01-05"))
    assert (days(change), change.returning) == (["01-06"], ())


def test_a_date_back_in_the_window_whose_run_was_not_cancelled_is_not_run_twice():
    # An apply created the run of 01-04 and stopped before writing the wider window.
    runs = [*ALL_DONE[:3], run(6, "2024-01-04", "initial"), run(4, "2024-01-04", "cancelled")]
    change = window_change(window("2024-01-01", "2024-01-04"), runs, window("2024-01-01", "2024-01-03"))
    assert change.gained == ()


def test_a_moved_window_keeps_runs_that_landed_on_the_grid():
    change = window_change(window("2024-02-01", "2024-02-03"), [run(1, "2024-01-01", "running")])
    assert (days(change), [lost.id for lost in change.lost]) == (["02-01", "02-02", "02-03"], [1])


def test_a_start_shifted_by_part_of_a_step_moves_the_grid():
    change = window_change(window("2024-01-01 06:00:00", "2024-01-07"), ALL_DONE)
    assert (change.moved, change.gained, change.lost) == (True, (), ())


def test_month_end_drift_moves_the_grid():
    # 01-31 monthly runs on 01-31, 02-29, 03-29; a window from 03-31 runs on 03-31, 04-30.
    runs = [
        run(1, "2024-01-31", "completed"),
        run(2, "2024-02-29", "completed"),
        run(3, "2024-03-29", "completed"),
    ]
    moved = window_change(window("2024-03-31", "2024-05-31", "month"), runs)
    assert moved.moved
    extended = window_change(window("2024-01-31", "2024-05-29", "month"), runs)
    assert days(extended) == ["04-29", "05-29"]


def test_an_earlier_start_on_a_drifting_grid():
    runs = [run(1, "2024-02-29", "completed"), run(2, "2024-03-29", "completed")]
    change = window_change(window("2024-01-31", "2024-03-29", "month"), runs)
    assert (days(change), change.moved) == (["01-31"], False)


def test_custom_intervals_are_seconds():
    runs = [run(1, "2024-01-01 00:00:00", "completed"), run(2, "2024-01-01 01:30:00", "completed")]
    change = window_change(window("2024-01-01", "2024-01-01 04:30:00", "custom", 5400), runs)
    assert [date.strftime("%H:%M") for date in change.gained] == ["03:00", "04:30"]


# -- the variables Mage gives each run ---------------------------------------------------------------


def test_run_variables_match_what_real_mage_built():
    # mage-runs-api.md §4.13 B: the run for 01-08 of a 01-01..01-08 window.
    found = run_variables(window("2024-01-01", "2024-01-08"), {at("2024-01-08")})
    assert found[at("2024-01-08")] == {
        "ds": "2024-01-08",
        "execution_date": "2024-01-08T00:00:00",
        "hr": "00",
        "interval_end_datetime": "2024-01-09T00:00:00",
        "interval_seconds": 86400.0,
        "interval_start_datetime": "2024-01-08T00:00:00",
        "interval_start_datetime_previous": "2024-01-07T00:00:00",
    }


def test_run_variables_of_a_middle_date_and_of_a_one_date_window():
    middle = run_variables(
        window("2024-01-02 06:30:00", "2024-01-04 06:30:00", "hour", 6), {at("2024-01-02 06:30:00")}
    )
    assert middle[at("2024-01-02 06:30:00")]["interval_start_datetime_previous"] == "2024-01-02T00:30:00"
    assert middle[at("2024-01-02 06:30:00")]["interval_end_datetime"] == "2024-01-02T12:30:00"
    single = run_variables(window("2024-10-01", "2024-10-01"), {at("2024-10-01")})[at("2024-10-01")]
    assert (
        single["interval_end_datetime"],
        single["interval_seconds"],
        single["interval_start_datetime_previous"],
    ) == (
        None,
        None,
        None,
    )


def test_run_variables_follow_month_end_drift():
    found = run_variables(window("2024-01-31", "2024-03-29", "month"), {at("2024-02-29")})
    assert found[at("2024-02-29")]["interval_end_datetime"] == "2024-03-29T00:00:00"
    assert found[at("2024-02-29")]["interval_seconds"] == 29 * 86400.0


def test_date_ranges_join_consecutive_window_dates():
    dates = [at(f"2024-01-{d:02d}") for d in (3, 9, 10, 11, 20)]
    found = [(a.day, b.day) for a, b in date_ranges(window("2024-01-01", "2024-01-31"), dates)]
    assert found == [(3, 3), (9, 11), (20, 20)]
    every_other = [
        (a.day, b.day)
        for a, b in date_ranges(
            window("2024-01-01", "2024-01-31", "day", 2), [at("2024-01-03"), at("2024-01-05")]
        )
    ]
    assert every_other == [(3, 5)]
