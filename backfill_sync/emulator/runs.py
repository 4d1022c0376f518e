"""Backfill run dates and pipeline runs as Mage's backfills service and scheduler build, start, finish,
retry and cancel them (mage-api.md §4.6, mage-runs-api.md §4.9-4.13)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from backfill_sync.emulator.apierrors import ServerError
from backfill_sync.emulator.state import BackfillRow, RunRow, Store, TriggerRow
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
    for run in latest_runs(store.runs_of(row.id)):
        counts[run.status] = counts.get(run.status, 0) + 1
    return counts


def latest_runs(runs: list[RunRow]) -> list[RunRow]:
    """The run with the highest id of each execution date."""
    latest: dict[datetime | None, RunRow] = {}
    for run in runs:
        kept = latest.get(run.execution_date)
        if kept is None or run.id > kept.id:
            latest[run.execution_date] = run
    return list(latest.values())


def start_backfill(store: Store, row: BackfillRow) -> None:
    """PUT status "initial": the trigger (made once), one run per date now, the trigger made active.
    Nothing is created when there are no dates, yet the status is saved."""
    with store.lock:
        variables_list = run_variables(list(build_dates(row)))
        if variables_list:
            trigger = store.triggers.get(row.pipeline_schedule_id or 0)
            if trigger is None:
                trigger = store.insert_trigger(
                    f"Backfill {row.name}", row.pipeline_uuid, row.variables, row.settings
                )
                row.pipeline_schedule_id = trigger.id
            base = row.variables if isinstance(row.variables, dict) else {}
            for variables in variables_list:
                add_run(
                    store,
                    trigger,
                    row.id,
                    datetime.fromisoformat(variables["execution_date"]),
                    {**base, **variables},
                )
            set_trigger_status(trigger, "active")
        row.started_at = now_utc()
        row.status = "initial"
        row.updated_at = now_utc_seconds()


def add_run(
    store: Store,
    trigger: TriggerRow,
    backfill_id: int | None,
    execution_date: datetime | None,
    variables: dict[str, Any],
) -> RunRow:
    now = now_utc_seconds()
    run = RunRow(
        id=store.new_run_id(),
        backfill_id=backfill_id,
        pipeline_uuid=trigger.pipeline_uuid,
        pipeline_schedule_id=trigger.id,
        execution_date=execution_date,
        variables=variables,
        created_at=now,
        updated_at=now,
    )
    store.runs[run.id] = run
    return run


def set_trigger_status(trigger: TriggerRow, status: str) -> None:
    if status == "active" and trigger.status != "active":
        trigger.last_enabled_at = now_utc()
    trigger.status = status
    trigger.updated_at = now_utc_seconds()


def cancel_backfill(store: Store, row: BackfillRow) -> None:
    """PUT status "cancelled": unfinished runs are cancelled, the trigger made inactive, and the status is
    saved, even when Mage then crashes because the backfill was never started (mage-api.md §6, hazard 5)."""
    with store.lock:
        for run in store.runs_of(row.id):
            if run.status not in FINISHED:
                set_run_status(run, "cancelled")
        row.status = "cancelled"
        row.updated_at = now_utc_seconds()
        trigger = store.triggers.get(row.pipeline_schedule_id or 0)
        if trigger is None:
            raise ServerError("'NoneType' object has no attribute 'update'", "AttributeError")
        set_trigger_status(trigger, "inactive")


def set_run_status(run: RunRow, status: str) -> None:
    run.status = status
    run.updated_at = now_utc_seconds()
    if status == "completed":
        run.completed_at = now_utc()
    if status in FINISHED:
        run.finish_after = None


def retry_run(run: RunRow) -> None:
    """`retry_blocks`: the run's unfinished blocks go back to initial and the run to running; the
    scheduler executes them at its next tick. A completed run executes nothing, and a run whose retry is
    pending or executing is not executed twice (mage-runs-api.md §4.11)."""
    run.updated_at = now_utc_seconds()
    if run.status == "running":
        return
    run.execute = run.status != "completed"
    run.status = "running"
    run.pending = True
    run.finish_after = None


def cancel_run(run: RunRow) -> None:
    """`status: cancelled` on one run: only initial and running runs stop; the backfill is not told."""
    if run.status in ("initial", "running"):
        set_run_status(run, "cancelled")


def advance_runs(store: Store, now: float, run_seconds: float) -> None:
    """One scheduler tick: start the runs of active triggers, execute pending retries (whatever the
    trigger), and finish the executions that are due."""
    with store.lock:
        quotas = _start_quotas(store)
        for run in sorted(store.runs.values(), key=lambda r: (r.execution_date or datetime.min, r.id)):
            if _due_to_begin(store, run, quotas):
                _begin(store, run, now, run_seconds)
            elif run.status == "running" and run.finish_after is not None and now >= run.finish_after:
                finish_run(store, run, _outcome(store, run))


def _due_to_begin(store: Store, run: RunRow, quotas: dict[int, int]) -> bool:
    if run.status == "running":
        return run.pending
    trigger = store.trigger_of(run)
    if run.status != "initial" or trigger is None or trigger.status != "active":
        return False
    if trigger.id in quotas:
        if quotas[trigger.id] <= 0:
            return False
        quotas[trigger.id] -= 1
    return True


def _start_quotas(store: Store) -> dict[int, int]:
    """How many more runs each trigger with a `pipeline_run_limit` setting may start in this tick: the
    limit less its running runs (schedule_all), earliest dates first; a limit of 0 holds every run."""
    quotas: dict[int, int] = {}
    for trigger in store.triggers.values():
        limit = trigger.settings.get("pipeline_run_limit") if isinstance(trigger.settings, dict) else None
        if isinstance(limit, int) and not isinstance(limit, bool):
            quotas[trigger.id] = limit
    for run in store.runs.values():
        if run.status == "running" and run.pipeline_schedule_id in quotas:
            quotas[run.pipeline_schedule_id] -= 1
    return quotas


def _begin(store: Store, run: RunRow, now: float, run_seconds: float) -> None:
    if run.status == "initial":
        run.started_at = now_utc()
        set_run_status(run, "running")
    run.pending = False
    if run.execute:
        _count_execution(store, run)
    # run_seconds 0: executions end only when a test finishes them; one that runs nothing ends at once.
    run.finish_after = now + run_seconds if run_seconds > 0 else (now if not run.execute else None)
    row = _backfill_of(store, run)
    if row is not None and row.status == "initial":
        row.status = "running"
        row.updated_at = now_utc_seconds()


def _count_execution(store: Store, run: RunRow) -> None:
    key = (run.pipeline_uuid, run.execution_date)
    store.executions[key] = store.executions.get(key, 0) + 1


def _outcome(store: Store, run: RunRow) -> str:
    if not run.execute:
        return "completed"
    failing = store.fail_dates.get(run.pipeline_uuid or "", set())
    return "failed" if run.execution_date in failing else "completed"


def finish_run(store: Store, run: RunRow, status: str) -> None:
    """A run ends; the backfill follows as Mage's scheduler moves it: `failed` as soon as one latest run
    failed (even while others still run, and without failed_at), `completed` (with completed_at, and the
    trigger made inactive) once every latest run of the trigger completed. Nothing else moves it, so one
    cancelled run leaves it `running` for good (mage-runs-api.md §4.9, §6.10-11)."""
    set_run_status(run, status)
    run.pending = False
    run.execute = True
    row = _backfill_of(store, run)
    trigger = store.trigger_of(run)
    if row is None or trigger is None:
        return
    latest = latest_runs([r for r in store.runs.values() if r.pipeline_schedule_id == trigger.id])
    if status == "completed" and all(r.status == "completed" for r in latest):
        row.status = "completed"
        row.completed_at = now_utc()
        row.updated_at = now_utc_seconds()
        set_trigger_status(trigger, "inactive")
    elif status == "failed" and any(r.status == "failed" for r in latest):
        row.status = "failed"
        row.updated_at = now_utc_seconds()


def _backfill_of(store: Store, run: RunRow) -> BackfillRow | None:
    """`schedule.backfills[0]`: the backfill that owns the run's trigger."""
    if run.pipeline_schedule_id is None:
        return None
    return next(
        (row for row in store.backfills.values() if row.pipeline_schedule_id == run.pipeline_schedule_id),
        None,
    )


def finish_runs(
    store: Store, backfill_id: int, status: str | None, dates: set[datetime] | None = None
) -> int:
    """Test control: finish the unfinished runs of one backfill now (of some dates, or all), completed,
    failed, or as the failing dates say when `status` is None; returns how many. A run that had not
    begun executing counts as executed once."""
    with store.lock:
        changed = 0
        for run in sorted(store.runs_of(backfill_id), key=lambda r: r.id):
            if run.status in FINISHED or (dates is not None and run.execution_date not in dates):
                continue
            if run.execute and (run.status == "initial" or run.pending):
                _count_execution(store, run)
            finish_run(store, run, status or _outcome(store, run))
            changed += 1
        return changed
