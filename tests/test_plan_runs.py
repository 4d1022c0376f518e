"""compute_plan on a started backfill's runs: retries, dates a window gains or loses (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backfill_sync.errors import PlanError
from backfill_sync.models import PlanItem, RunCounts
from backfill_sync.plan_runs import (
    EDIT_AFTER_START_WARNING,
    GRID_MOVED_WARNING,
    VARIABLES_AFTER_START_WARNING,
    WINDOW_NOT_MANAGED_WARNING,
    run_lists_wanted,
    with_progress,
)
from backfill_sync.render import render_plan_text
from backfill_sync.runs import Run
from tests.factories import desired, january_runs, live, manifest, plan_of, run

BEFORE = "2024-06-01T12:00:00Z"


def kinds(item: PlanItem) -> list[str]:
    return [action.kind for action in item.actions]


def days(item: PlanItem, kind: str) -> list[str]:
    (action,) = [action for action in item.actions if action.kind == kind]
    return [date.strftime("%m-%d") for date in action.dates]


def plan_with_runs(want, backfill, runs: list[Run], **kwargs) -> PlanItem:
    (item,) = plan_of(manifest(want), live_backfills=[backfill], runs={backfill.id: runs}, **kwargs).items()
    return item


# -- retry_failed_before -----------------------------------------------------------------------------


def failed_january() -> list[Run]:
    runs = january_runs()
    runs[2] = run(3, "2024-01-03", "failed", "2024-05-01 10:00:00")
    runs[8] = run(9, "2024-01-09", "failed", "2024-05-01 10:00:00")
    runs[9] = run(10, "2024-01-10", "failed", "2024-06-02 08:00:00")  # failed again after the instant
    return runs


def test_retry_plans_exactly_the_dates_that_failed_before_the_instant():
    item = plan_with_runs(
        desired("a", state="started", retry_failed_before=BEFORE),
        live(1, "a", status="failed"),
        failed_january(),
    )
    assert kinds(item) == ["retry"]
    assert days(item, "retry") == ["01-03", "01-09"]
    assert item.actions[0].runs == 2


def test_nothing_to_retry_is_no_change():
    item = plan_with_runs(
        desired("a", state="started", retry_failed_before=BEFORE),
        live(1, "a", status="completed"),
        january_runs(),
    )
    assert item.actions == ()


def test_retry_without_state_retries_too():
    item = plan_with_runs(
        desired("a", retry_failed_before=BEFORE), live(1, "a", status="failed"), failed_january()
    )
    assert kinds(item) == ["retry"]


def test_an_instant_later_than_mages_clock_is_refused_with_its_line():
    want = desired("a", state="started", retry_failed_before="2024-06-01T12:00:01Z")
    with pytest.raises(
        PlanError, match=r"retry_failed_before 2024-06-01T12:00:01Z is later than Mage's clock"
    ):
        plan_of(
            manifest(want),
            live_backfills=[live(1, "a", status="failed")],
            mage_time=datetime(2024, 6, 1, 12, tzinfo=UTC),
        )


def test_a_never_started_backfill_has_nothing_to_retry():
    want = desired("a", state="started", retry_failed_before=BEFORE)
    (item,) = plan_of(manifest(want), live_backfills=[live(1, "a")]).items()
    assert kinds(item) == ["start"]


# -- a window that changes under state: started -------------------------------------------------------


def test_a_later_end_runs_exactly_the_new_dates_and_warns_of_nothing():
    item = plan_with_runs(
        desired("a", end="2024-02-02", state="started"), live(1, "a", status="completed"), january_runs()
    )
    assert kinds(item) == ["update", "run"]
    assert days(item, "run") == ["02-01", "02-02"]
    assert item.warnings == ()


def test_an_earlier_end_cancels_the_unfinished_runs_of_lost_dates():
    runs = [
        *january_runs(days=20),
        *(run(21 + day, f"2024-01-{21 + day:02d}", "running") for day in range(11)),
    ]
    item = plan_with_runs(
        desired("a", end="2024-01-25", state="started"), live(1, "a", status="running"), runs
    )
    assert kinds(item) == ["update", "cancel_runs"]
    assert days(item, "cancel_runs") == [f"01-{day}" for day in range(26, 32)]


def test_finished_runs_of_lost_dates_stay_and_the_plan_says_so():
    item = plan_with_runs(
        desired("a", end="2024-01-29", state="started"), live(1, "a", status="completed"), january_runs()
    )
    assert kinds(item) == ["update"]
    assert item.notes == ("2 finished runs of dates no longer in the window stay in Mage",)


def test_a_crash_between_runs_and_window_is_repaired_by_the_next_plan():
    # The first apply created the run of 02-01 and then stopped before writing the new window.
    runs = [*january_runs(), run(40, "2024-02-01", "initial")]
    item = plan_with_runs(
        desired("a", end="2024-02-02", state="started"), live(1, "a", status="completed"), runs
    )
    assert days(item, "run") == ["02-02"]


def narrowed_then_cancelled() -> list[Run]:
    """January, narrowed to 01-20 while it ran: the runs of 01-21..01-31 were cancelled."""
    return [
        *january_runs(days=20),
        *(run(21 + day, f"2024-01-{21 + day:02d}", "cancelled") for day in range(11)),
    ]


def test_dates_a_rewidened_window_gets_back_with_cancelled_runs_run_again():
    item = plan_with_runs(
        desired("a", end="2024-01-22", state="started"),
        live(1, "a", end="2024-01-20 00:00:00", status="running"),
        narrowed_then_cancelled(),
    )
    assert kinds(item) == ["update", "run"]
    assert days(item, "run") == ["01-21", "01-22"]
    assert item.notes[0].startswith("2 of these dates come back into the window with a cancelled run")


def test_a_date_back_in_the_window_is_run_not_also_retried():
    item = plan_with_runs(
        desired("a", end="2024-01-22", state="started", retry_failed_before=BEFORE),
        live(1, "a", end="2024-01-20 00:00:00", status="running"),
        [
            *january_runs(days=20),
            *(
                run(21 + day, f"2024-01-{21 + day:02d}", "cancelled", "2024-05-01 10:00:00")
                for day in range(11)
            ),
        ],
    )
    assert (kinds(item), days(item, "run")) == (["update", "run"], ["01-21", "01-22"])


def test_retry_and_new_dates_together():
    item = plan_with_runs(
        desired("a", end="2024-02-01", state="started", retry_failed_before=BEFORE),
        live(1, "a", status="failed"),
        failed_january(),
    )
    assert kinds(item) == ["update", "run", "retry"]


def test_progress_counts_only_the_dates_of_the_window_where_the_runs_were_read():
    # Mage's counts: the 20 dates of the window and the 11 a narrowing cancelled.
    backfill = live(1, "a", end="2024-01-20 00:00:00", status="running")
    runs = [*january_runs("running", days=20), *narrowed_then_cancelled()[20:]]
    plan = plan_of(
        manifest(desired("a", end="2024-01-22", state="started")), live_backfills=[backfill], runs={1: runs}
    )
    counts = {1: RunCounts(20, {"running": 20, "cancelled": 11})}
    (item,) = with_progress(plan, counts, {1: runs}).items()
    assert item.progress is not None
    assert (item.progress.total, dict(item.progress.counts)) == (20, {"running": 20})
    assert "      runs now: completed 0/20, 20 running\n" in render_plan_text(
        with_progress(plan, counts, {1: runs}), color=False
    )


@pytest.mark.parametrize(
    ("want", "warning"),
    [
        pytest.param(
            desired("a", start="2024-01-01T06:00:00Z", state="started"),
            GRID_MOVED_WARNING,
            id="start-by-part-of-a-step",
        ),
        pytest.param(desired("a", units=2, state="started"), EDIT_AFTER_START_WARNING, id="interval-changed"),
        pytest.param(desired("a", end="2024-02-02"), WINDOW_NOT_MANAGED_WARNING, id="no-state-started"),
        pytest.param(
            desired("a", end="2024-02-02", state="started", variables={"v": 2}),
            VARIABLES_AFTER_START_WARNING,
            id="variables-changed",
        ),
    ],
)
def test_what_the_runs_will_not_follow_is_warned(want, warning):
    item = plan_with_runs(want, live(1, "a", status="completed"), january_runs())
    assert warning in item.warnings


def test_a_moved_grid_creates_and_cancels_nothing():
    item = plan_with_runs(
        desired("a", start="2024-01-01T06:00:00Z", end="2024-02-05", state="started"),
        live(1, "a", status="running"),
        january_runs("running"),
    )
    assert kinds(item) == ["update"]


def test_month_end_drift_is_a_moved_grid():
    runs = [run(1, "2024-01-31", "completed"), run(2, "2024-02-29", "completed")]
    item = plan_with_runs(
        desired("a", start="2024-03-31", end="2024-05-31", interval_type="month", state="started"),
        live(
            1,
            "a",
            start="2024-01-31 00:00:00",
            end="2024-02-29 00:00:00",
            interval_type="month",
            status="completed",
        ),
        runs,
    )
    assert (kinds(item), GRID_MOVED_WARNING in item.warnings) == (["update"], True)


def test_custom_intervals_gain_dates_in_seconds():
    runs = [run(1, "2024-01-01 00:00:00", "completed"), run(2, "2024-01-01 01:30:00", "completed")]
    item = plan_with_runs(
        desired(
            "a",
            start="2024-01-01",
            end="2024-01-01T04:30:00Z",
            interval_type="custom",
            units=5400,
            state="started",
        ),
        live(
            1,
            "a",
            start="2024-01-01 00:00:00",
            end="2024-01-01 01:30:00",
            interval_type="custom",
            units=5400,
            status="completed",
        ),
        runs,
    )
    (action,) = [a for a in item.actions if a.kind == "run"]
    assert [date.strftime("%H:%M") for date in action.dates] == ["03:00", "04:30"]


# -- which run lists a plan reads ---------------------------------------------------------------------


def test_run_lists_are_read_only_where_the_plan_needs_them():
    wants = manifest(
        desired("retried", retry_failed_before=BEFORE),
        desired("widened", end="2024-02-02", state="started"),
        desired("widened-no-state", end="2024-02-02"),
        desired("same", state="started"),
        desired("new", state="started"),
        desired("not-started", end="2024-02-02", state="started"),
    )
    lives = [
        live(1, "retried", status="failed"),
        live(2, "widened", status="completed"),
        live(3, "widened-no-state", status="completed"),
        live(4, "same", status="running"),
        live(6, "not-started"),
    ]
    assert run_lists_wanted([wants], {"etl_daily": lives}) == {1: "retry", 2: "slim"}
