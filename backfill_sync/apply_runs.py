"""Carry out a plan item's run actions: runs for the dates a window gained, retries of failed dates, and
cancels of the unfinished runs of dates it lost.

Each works from the backfill's runs as read just before writing: a planned date that no longer needs
it (someone else ran, retried or finished it) is "already done" and skipped; a date that needs it but
was not in the plan makes the item stale, because nobody reviewed it. New runs get the variables Mage's
own start would give them for the manifest's window, and the backfill's trigger is made active so the
scheduler starts them (mage-runs-api.md §4.13 B).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from backfill_sync.errors import MageError, StalePlanError
from backfill_sync.models import Action, DesiredBackfill, JsonObject, LiveBackfill
from backfill_sync.render.text import format_date
from backfill_sync.runs import Run, Trigger, latest_runs
from backfill_sync.schedule import run_variables

DATED_KINDS = ("run", "retry", "cancel_runs")


class RunWriter(Protocol):
    def retry_run(self, run_id: int) -> Run: ...
    def cancel_run(self, run_id: int) -> Run: ...
    def create_run(
        self, trigger_id: int, backfill_id: int, execution_date: datetime, variables: JsonObject
    ) -> Run: ...
    def get_trigger(self, trigger_id: int) -> Trigger | None: ...
    def activate_trigger(self, trigger_id: int) -> None: ...


def still_to_do(planned: Action, fresh: Sequence[Action]) -> tuple[Action, tuple[datetime, ...]]:
    """The planned action cut to the dates that still need it now, and the dates already done.

    Raises StalePlanError when dates need it now that the plan did not show."""
    now = next((action for action in fresh if action.kind == planned.kind), None)
    needed = set(now.dates) if now is not None else set()
    unreviewed = sorted(needed - set(planned.dates))
    if unreviewed:
        shown = ", ".join(format_date(date) for date in unreviewed[:5])
        raise StalePlanError(
            f"Mage changed since the plan was made: {planned.kind} would now also cover {shown}; "
            "run plan again"
        )
    todo = tuple(date for date in planned.dates if date in needed)
    done = tuple(date for date in planned.dates if date not in needed)
    return Action(planned.kind, len(todo), dates=todo), done


def carry_out_dates(
    action: Action,
    desired: DesiredBackfill,
    live: LiveBackfill,
    runs: Sequence[Run],
    writer: RunWriter,
    steps: list[str],
) -> None:
    if not action.dates:
        return
    if action.kind == "run":
        _run_new_dates(action.dates, desired, live, writer)
        steps.append(f"ran {_dates(action.dates)} ({len(action.dates)} new)")
        return
    latest = latest_runs(runs)
    ids = [latest[date].id for date in action.dates]
    if action.kind == "retry":
        for run_id in ids:
            writer.retry_run(run_id)
        steps.append(f"retried {_dates(action.dates)}")
    else:
        for run_id in ids:
            writer.cancel_run(run_id)
        steps.append(f"cancelled the runs of {_dates(action.dates)}")


def _run_new_dates(
    dates: Sequence[datetime], desired: DesiredBackfill, live: LiveBackfill, writer: RunWriter
) -> None:
    """One run per date on the backfill's trigger, then the trigger made active if it is not."""
    trigger_id = live.pipeline_schedule_id
    schedule = desired.schedule
    if trigger_id is None or schedule is None:
        raise MageError(
            f"backfill {live.id} has no trigger to add runs to (Mage makes one when a start has dates); "
            "restart it instead"
        )
    variables = run_variables(schedule, set(dates))
    for date in dates:
        # Mage's start merges the backfill's variables under each run's own (merge_dict).
        writer.create_run(trigger_id, live.id, date, {**(desired.variables or {}), **variables[date]})
    trigger = writer.get_trigger(trigger_id)
    if trigger is None or not trigger.active:
        writer.activate_trigger(trigger_id)


def _dates(dates: Sequence[datetime]) -> str:
    shown = ", ".join(format_date(date) for date in dates[:5])
    more = len(dates) - 5
    noun = "date" if len(dates) == 1 else "dates"
    return f"{noun} {shown}" + (f" and {more} more" if more > 0 else "")
