"""PURE: what a backfill's pipeline runs say about its dates. No I/O.

The latest run of a date is the one with the highest id for that execution date (Mage's own
`run_status_counts` rule), and only the dates of the backfill's window count. From those this module
decides how far a backfill is, whether it is finished (Mage's `status` is not to be trusted for that:
it says `failed` while runs still run and stays `running` forever after one run was cancelled,
mage-runs-api.md §6.10-11), which dates a `retry_failed_before` asks to retry, and which dates a changed
window gains or loses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, get_args

from backfill_sync.models import Schedule
from backfill_sync.schedule import count_runs, fixed_step, next_run_date, run_dates

RunStatus = Literal["initial", "running", "completed", "failed", "cancelled"]
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
UNFINISHED: tuple[str, ...] = ("initial", "running")

# How a backfill stands, judged on its runs (see `verdict`); `not_applied` is for a manifest entry declared
# `state: started` that Mage lacks or never started (status.BackfillStatus decides it, not the runs).
Verdict = Literal["not_started", "running", "completed", "failed", "cancelled", "incomplete", "not_applied"]
VERDICTS: tuple[str, ...] = get_args(Verdict)


@dataclass(frozen=True, slots=True)
class Run:
    """One pipeline run as far as a backfill's dates care."""

    id: int
    execution_date: datetime | None  # timezone-aware UTC; None for a run Mage gave no date
    status: str
    # When Mage last wrote the run (one-second precision, truncated); only full listings carry it.
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Trigger:
    """The trigger (PipelineSchedule) a backfill's runs belong to; Mage starts runs only while active."""

    id: int
    status: str | None

    @property
    def active(self) -> bool:
        return self.status == "active"


@dataclass(frozen=True, slots=True)
class Progress:
    """How a backfill's window stands, on the latest run of each of its dates."""

    total: int  # dates in the window
    counts: Mapping[str, int] = field(default_factory=dict)  # latest runs of window dates, by status
    failed_dates: tuple[datetime, ...] = ()  # known when the runs were listed; () from counts alone
    cancelled_dates: tuple[datetime, ...] = ()
    stuck_dates: tuple[datetime, ...] = ()  # `initial` under an inactive trigger: they will never start
    dates_known: bool = True  # False when only Mage's counts were read, not the runs themselves

    def count(self, status: str) -> int:
        return self.counts.get(status, 0)

    @property
    def without_run(self) -> int:
        """Dates of the window that have no run at all."""
        return max(self.total - sum(self.counts.values()), 0)

    @property
    def unfinished(self) -> int:
        """Dates still waited on: their latest run is initial or running and not stuck."""
        return self.count("initial") + self.count("running") - len(self.stuck_dates)

    @property
    def finished_dates(self) -> int:
        return self.count("completed") + self.count("failed") + self.count("cancelled")

    @property
    def finished(self) -> bool:
        return self.unfinished <= 0

    @property
    def all_completed(self) -> bool:
        return self.count("completed") >= self.total


def latest_runs(runs: Iterable[Run]) -> dict[datetime, Run]:
    """The latest run of each execution date: the highest id wins. Runs without a date are ignored."""
    latest: dict[datetime, Run] = {}
    for run in runs:
        if run.execution_date is None:
            continue
        kept = latest.get(run.execution_date)
        if kept is None or run.id > kept.id:
            latest[run.execution_date] = run
    return latest


def window_runs(schedule: Schedule | None, runs: Iterable[Run]) -> dict[datetime, Run]:
    """The latest run of each date of the window; with no usable window, of every date."""
    latest = latest_runs(runs)
    if schedule is None:
        return latest
    return {date: run for date, run in latest.items() if in_window(schedule, date)}


def window_progress(
    schedule: Schedule | None, runs: Iterable[Run], *, trigger_active: bool | None = None
) -> Progress:
    """Progress of the window from the runs themselves. `trigger_active=False` marks `initial` runs as
    stuck: Mage starts a backfill's runs only while its trigger is active (mage-runs-api.md §6.12)."""
    latest = window_runs(schedule, runs)
    counts: dict[str, int] = {}
    for run in latest.values():
        counts[run.status] = counts.get(run.status, 0) + 1
    total = len(latest) if schedule is None else count_runs(schedule)
    return Progress(
        total=total,
        counts=counts,
        failed_dates=_dates_with(latest, "failed"),
        cancelled_dates=_dates_with(latest, "cancelled"),
        stuck_dates=_dates_with(latest, "initial") if trigger_active is False else (),
    )


def progress_from_counts(total: int, counts: Mapping[str, int]) -> Progress:
    """Progress from Mage's `total_run_count` and `run_status_counts` alone (one cheap request).

    Mage counts the latest run of every date the backfill ever ran, also dates that have left the window
    since; when its counts add up to more than the window, only the run list can tell.
    """
    return Progress(total=total, counts=dict(counts), dates_known=False)


def counts_cover_window_only(total: int, counts: Mapping[str, int]) -> bool:
    return sum(counts.values()) <= total


def verdict(status: str | None, progress: Progress | None, *, declared_cancelled: bool = False) -> Verdict:
    """One word for a backfill: not_started, running, completed, failed, cancelled or incomplete.

    `failed` means some dates failed and nothing is left running; `incomplete` means nothing failed and
    nothing runs, yet not every date completed (dates cancelled one by one, stuck runs, dates without a
    run). A backfill cancelled in Mage is `cancelled`; one declared `state: cancelled` too, unless every
    date had completed anyway (then there was nothing left to cancel: it is `completed`).
    """
    if status is None:
        return "not_started"
    if progress is None:
        return "running" if status in UNFINISHED else _status_verdict(status)
    if not progress.finished:
        return "running"
    if status == "cancelled":
        return "cancelled"
    if progress.all_completed:
        return "completed"
    if declared_cancelled:
        return "cancelled"
    return "failed" if progress.count("failed") else "incomplete"


def _status_verdict(status: str) -> Verdict:
    return "completed" if status == "completed" else "cancelled" if status == "cancelled" else "failed"


# Why an instant that has not passed yet is refused (validate by this machine's clock, plan by Mage's).
RETRY_LATER_THAN_NOW = (
    ": every date that fails again before then would be retried at every apply; use a time that has "
    "passed, such as now"
)


def retry_cutoff(before: datetime) -> datetime:
    """`retry_failed_before` at Mage's precision: run times are whole seconds, truncated (SQLite)."""
    return before.replace(microsecond=0)


def runs_to_retry(
    schedule: Schedule | None,
    runs: Iterable[Run],
    before: datetime,
    *,
    backfill_cancelled: bool,
) -> tuple[Run, ...]:
    """The latest runs of window dates that failed (or were cancelled one by one) before `before`.

    A run's `updated_at` is when it failed (Mage writes nothing to a failed run afterwards, and a retry
    rewrites it), so a run that failed again after the instant is left alone until the instant is moved
    on: applying the same manifest twice retries nothing the second time. When the whole backfill was
    cancelled, its cancelled runs are what was asked for, not something to retry.
    """
    cutoff = retry_cutoff(before)
    retryable = ("failed",) if backfill_cancelled else ("failed", "cancelled")
    chosen = [
        run
        for run in window_runs(schedule, runs).values()
        if run.status in retryable and run.updated_at is not None and run.updated_at < cutoff
    ]
    return tuple(sorted(chosen, key=_by_date))


@dataclass(frozen=True, slots=True)
class WindowChange:
    """What a new window means for the runs a backfill already has."""

    gained: tuple[datetime, ...] = ()  # dates of the new window to run (see window_change)
    lost: tuple[Run, ...] = ()  # unfinished latest runs of dates outside the new window
    moved: bool = False  # some runs lie off the new window's date grid: runs are not managed then
    returning: tuple[datetime, ...] = ()  # the gained dates that come back with a cancelled latest run


def window_change(new: Schedule, runs: Iterable[Run], old: Schedule | None = None) -> WindowChange:
    """Dates to run and runs to cancel so that the runs match the window `new` (the window was `old`).

    A date is to run when it has no run (a run that exists may come from an apply that stopped before
    writing the window: it is not run twice), or when it comes back into the window (it is not in `old`;
    with no `old`, no date does) with a cancelled latest run: a narrower window cancelled it, so it is
    not done. A cancelled run of a date that stays in the window is left to `retry_failed_before`.

    Only when every existing run lies on the new window's date grid (the same step, the start shifted by
    whole steps): otherwise the grid moved (or the month-end drift differs) and the runs' dates and
    variables cannot be matched up, so nothing is created or cancelled.
    """
    latest = latest_runs(runs)
    if not all(on_grid(new, date) for date in latest):
        return WindowChange(moved=True)
    gained = tuple(date for date in run_dates(new) if date not in latest or _returns(latest[date], old))
    returning = tuple(date for date in gained if date in latest)
    lost = tuple(
        sorted(
            (run for date, run in latest.items() if run.status in UNFINISHED and not in_window(new, date)),
            key=_by_date,
        )
    )
    return WindowChange(gained=gained, lost=lost, returning=returning)


def _returns(latest: Run, old: Schedule | None) -> bool:
    """Whether a date of the new window with this latest run comes back cancelled from outside `old`."""
    assert latest.execution_date is not None, "latest runs have dates"
    return latest.status == "cancelled" and old is not None and not in_window(old, latest.execution_date)


def date_ranges(schedule: Schedule | None, dates: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Dates as runs of consecutive window dates: [(first, last), ...] in order."""
    ranges: list[tuple[datetime, datetime]] = []
    for date in sorted(dates):
        if ranges and schedule is not None and next_run_date(schedule, ranges[-1][1]) == date:
            ranges[-1] = (ranges[-1][0], date)
        else:
            ranges.append((date, date))
    return ranges


def in_window(schedule: Schedule, date: datetime) -> bool:
    """Whether `date` is one of the window's execution dates."""
    return schedule.start <= date <= schedule.end and on_grid(schedule, date)


def on_grid(schedule: Schedule, date: datetime) -> bool:
    """Whether `date` lies on the window's grid extended both ways (by whole steps from its start)."""
    step = fixed_step(schedule)
    if step is not None:
        return (date - schedule.start) % step == timedelta(0)
    if date >= schedule.start:
        return _reached(_window(schedule, schedule.start, date), date)
    # Calendar steps drift from the date they start at: step from `date` and see whether the start is hit.
    return _reached(_window(schedule, date, schedule.start), schedule.start)


def _window(schedule: Schedule, start: datetime, end: datetime) -> Schedule:
    return Schedule(start, end, schedule.interval_type, schedule.interval_units)


def _reached(schedule: Schedule, target: datetime) -> bool:
    last = None
    for last in run_dates(schedule):  # noqa: B007 - only the last date matters
        pass
    return last == target


def _dates_with(latest: Mapping[datetime, Run], status: str) -> tuple[datetime, ...]:
    return tuple(sorted(date for date, run in latest.items() if run.status == status))


def _by_date(run: Run) -> tuple[datetime, int]:
    assert run.execution_date is not None, "only dated runs are chosen"
    return (run.execution_date, run.id)
