"""Backfill run dates and pipeline runs as Mage's backfills service builds, starts and cancels them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from backfill_sync.emulator.apierrors import ServerError
from backfill_sync.emulator.state import BackfillRow, RunRow, Store
from backfill_sync.emulator.values import now_utc, now_utc_seconds, read_interval_type
from backfill_sync.models import Schedule
from backfill_sync.schedule import count_runs, run_dates

FINISHED = ("completed", "failed", "cancelled")
_TIMEDELTA_UNITS = {"second": "seconds", "minute": "minutes", "hour": "hours", "day": "days", "week": "weeks"}


def has_schedule(row: BackfillRow) -> bool:
    """The presenter adds run counts only when all four schedule fields are set."""
    return None not in (row.start_datetime, row.end_datetime, row.interval_type, row.interval_units)


def total_run_count(row: BackfillRow) -> int:
    if row.block_uuid:
        return 0
    schedule = _sane_schedule(row)
    if schedule is not None:
        return count_runs(schedule)
    return sum(1 for _ in build_dates(row))


def build_dates(row: BackfillRow) -> Iterator[datetime]:
    """Mage's `__build_dates`, lazily; the ways it crashes on junk become the same 500s."""
    if row.block_uuid:
        return iter(())
    schedule = _sane_schedule(row)
    if schedule is not None:
        return (date.replace(tzinfo=None) for date in run_dates(schedule))
    return _odd_dates(row)


def _sane_schedule(row: BackfillRow) -> Schedule | None:
    units = row.interval_units
    if (
        not isinstance(units, int)
        or isinstance(units, bool)
        or units < 1
        or row.start_datetime is None
        or row.end_datetime is None
        or row.interval_type is None
    ):
        return None
    interval_type: Any = read_interval_type(row.interval_type)
    return Schedule(
        row.start_datetime.replace(tzinfo=UTC), row.end_datetime.replace(tzinfo=UTC), interval_type, units
    )


def _odd_dates(row: BackfillRow) -> Iterator[datetime]:
    start, end, units = row.start_datetime, row.end_datetime, row.interval_units
    if start is None or end is None:
        raise ServerError(
            f"'<=' not supported between instances of '{type(start).__name__}' and '{type(end).__name__}'",
            "TypeError",
        )
    interval_type = read_interval_type(row.interval_type)
    if interval_type is None:
        raise ServerError("'NoneType' object has no attribute 'value'", "AttributeError")
    if isinstance(units, int | float) and not isinstance(units, bool) and units <= 0:
        # Deviation: Mage loops forever here on its only IO thread (mage-api.md §6, hazard 2). An emulator
        # that hung would only hang the test suite, so it answers with a 500 that names the hazard.
        raise ServerError(
            f"interval_units={units} would hang Mage 0.9.80 (infinite loop in __build_dates); "
            "the emulator refuses instead",
            "RuntimeError",
        )
    unit = "seconds" if interval_type == "custom" else _TIMEDELTA_UNITS.get(interval_type)
    if unit is None:  # month/year step with relativedelta, which wants whole numbers
        raise ServerError(
            "Non-integer years and months are ambiguous and not currently supported.", "ValueError"
        )
    if not isinstance(units, int | float):
        raise ServerError(
            f"unsupported type for timedelta {unit} component: {type(units).__name__}", "TypeError"
        )
    step = timedelta(**{unit: units})
    return _stepping(start, end, step)


def _stepping(start: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    current = start
    while current <= end:
        yield current
        current += step


def run_variables(dates: list[datetime]) -> list[dict[str, Any]]:
    """The per-run variables Mage derives from the date list (service.py `__build_variables_list`)."""
    result = []
    last = len(dates) - 1
    for idx, date in enumerate(dates):
        end: datetime | None = None
        seconds: float | None = None
        previous: datetime | None = None
        if idx < last:
            end = dates[idx + 1]
            seconds = (end - date).total_seconds()
        elif idx >= 1:
            previous = dates[idx - 1]
            seconds = (date - previous).total_seconds()
            end = date + timedelta(seconds=seconds)
        if previous is None and seconds:
            previous = date - timedelta(seconds=seconds)
        result.append(
            {
                "ds": date.strftime("%Y-%m-%d"),
                "execution_date": date.isoformat(),
                "hr": date.strftime("%H"),
                "interval_end_datetime": end.isoformat() if end else None,
                "interval_seconds": seconds,
                "interval_start_datetime": date.isoformat(),
                "interval_start_datetime_previous": previous.isoformat() if previous else None,
            }
        )
    return result


def run_status_counts(store: Store, row: BackfillRow) -> dict[str, int]:
    """Counted once per execution date, from the latest run of that date (Backfill model property)."""
    counts: dict[str, int] = {}
    seen: set[datetime | None] = set()
    runs = sorted(store.runs_of(row.id), key=lambda r: (r.execution_date or datetime.min, r.id), reverse=True)
    for run in runs:
        if run.execution_date not in seen:
            counts[run.status] = counts.get(run.status, 0) + 1
            seen.add(run.execution_date)
    return counts


def start_backfill(store: Store, row: BackfillRow, run_seconds: float) -> None:
    """PUT status "initial": one run per date now; nothing at all when there are no dates."""
    with store.lock:
        variables_list = run_variables(list(build_dates(row)))
        if variables_list:
            if row.pipeline_schedule_id is None:
                row.pipeline_schedule_id = store.new_schedule_id()
            _create_runs(store, row, variables_list, run_seconds)
        row.started_at = now_utc()
        row.status = "initial"
        row.updated_at = now_utc_seconds()


def _create_runs(
    store: Store, row: BackfillRow, variables_list: list[dict[str, Any]], run_seconds: float
) -> None:
    now = now_utc_seconds()
    deadline = time.monotonic() + run_seconds if run_seconds > 0 else None
    base = row.variables if isinstance(row.variables, dict) else {}
    for variables in variables_list:
        run = RunRow(
            id=store.new_run_id(),
            backfill_id=row.id,
            pipeline_uuid=row.pipeline_uuid,
            pipeline_schedule_id=row.pipeline_schedule_id,
            pipeline_schedule_name=f"Backfill {row.name}",
            execution_date=datetime.fromisoformat(variables["execution_date"]),
            variables={**base, **variables},
            created_at=now,
            updated_at=now,
            complete_after=deadline,
        )
        store.runs[run.id] = run


def cancel_backfill(store: Store, row: BackfillRow) -> None:
    """PUT status "cancelled": unfinished runs are cancelled and the status is saved, even when Mage then
    crashes because the backfill was never started (mage-api.md §6, hazard 5)."""
    with store.lock:
        for run in store.runs_of(row.id):
            if run.status not in FINISHED:
                set_run_status(run, "cancelled")
        row.status = "cancelled"
        row.updated_at = now_utc_seconds()
        if row.pipeline_schedule_id is None:
            raise ServerError("'NoneType' object has no attribute 'update'", "AttributeError")


def set_run_status(run: RunRow, status: str) -> None:
    run.status = status
    run.updated_at = now_utc_seconds()
    if status == "running" and run.started_at is None:
        run.started_at = now_utc()
    if status in ("completed", "failed"):
        run.completed_at = now_utc()


def settle_backfill(store: Store, row: BackfillRow) -> None:
    """The scheduler's view: initial → running once a run runs; → completed when every latest run per
    date completed (sets completed_at); → failed when one failed (failed_at stays null, like Mage)."""
    with store.lock:
        if row.status not in ("initial", "running"):
            return
        latest = _latest_runs(store, row)
        if not latest:
            return
        statuses = [run.status for run in latest]
        if all(status == "completed" for status in statuses):
            row.status = "completed"
            row.completed_at = now_utc()
        elif "failed" in statuses:
            row.status = "failed"
        elif row.status == "initial" and "running" in statuses:
            row.status = "running"
        else:
            return
        row.updated_at = now_utc_seconds()


def _latest_runs(store: Store, row: BackfillRow) -> list[RunRow]:
    latest: dict[datetime | None, RunRow] = {}
    for run in store.runs_of(row.id):
        kept = latest.get(run.execution_date)
        if kept is None or run.id > kept.id:
            latest[run.execution_date] = run
    return list(latest.values())


def finish_runs(store: Store, backfill_id: int, status: str) -> int:
    """Test control: complete or fail every unfinished run of one backfill; returns how many."""
    with store.lock:
        changed = 0
        for run in store.runs_of(backfill_id):
            if run.status not in FINISHED:
                set_run_status(run, status)
                changed += 1
        row = store.backfills.get(backfill_id)
        if row is not None:
            settle_backfill(store, row)
        return changed


def advance_runs(store: Store, now: float) -> None:
    """One scheduler tick: pick up new runs, complete the ones whose time has come, settle backfills."""
    with store.lock:
        for run in store.runs.values():
            if run.status == "initial":
                set_run_status(run, "running")
            if run.status == "running" and run.complete_after is not None and now >= run.complete_after:
                set_run_status(run, "completed")
        for row in list(store.backfills.values()):
            settle_backfill(store, row)
