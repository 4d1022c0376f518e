"""PURE: what a plan does to a started backfill's runs - retries of the dates that failed before
`retry_failed_before`, runs for the dates a window gains (same interval, same grid; also those it gets
back with a run a narrowing cancelled), cancels of the unfinished runs of the dates it loses - and what
an edit leaves its runs as (the warnings). The run lists come from the caller, for the backfills
`run_lists_wanted` names."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from backfill_sync.datetimes import format_iso
from backfill_sync.errors import PlanError, PlanProblem
from backfill_sync.matching import match_backfills
from backfill_sync.models import (
    Action,
    DesiredBackfill,
    FieldChange,
    LiveBackfill,
    Manifest,
    Plan,
    PlanItem,
    RunCounts,
    Schedule,
)
from backfill_sync.runs import (
    RETRY_LATER_THAN_NOW,
    UNFINISHED,
    Progress,
    Run,
    in_window,
    latest_runs,
    progress_from_counts,
    runs_to_retry,
    window_change,
    window_progress,
)

EDIT_AFTER_START_WARNING = "already started: runs it has created keep their old dates and variables"
VARIABLES_AFTER_START_WARNING = (
    "already started: runs it has created keep their old variables and settings (new dates get the new ones)"
)


GRID_MOVED_WARNING = (
    "already started, and the window's dates no longer fall on its runs' dates (the start moved by part "
    "of a step, or the interval changed): runs keep their old dates and variables and none are created "
    "for the new dates"
)


WINDOW_NOT_MANAGED_WARNING = (
    "already started: runs it has created keep their old dates; with `state: started` apply would run "
    "the dates the window gains and cancel the unfinished runs of the dates it loses"
)


WINDOW_KEYS = ("start_datetime", "end_datetime")


INTERVAL_KEYS = ("interval_type", "interval_units")
# What a plan must read of a backfill's runs: the slim list, or also when its failed runs failed.


RunNeed = Literal["slim", "retry"]


def run_lists_wanted(
    manifests: Sequence[Manifest], live_by_pipeline: Mapping[str, Sequence[LiveBackfill]]
) -> dict[int, RunNeed]:
    """The started backfills whose runs the plan must see: those with `retry_failed_before` (and when
    their failed runs failed), and those whose window changes under `state: started`."""
    wanted: dict[int, RunNeed] = {}
    for manifest in manifests:
        matches = match_backfills(manifest, live_by_pipeline.get(manifest.pipeline_uuid, ()))
        for desired in manifest.backfills:
            live = matches[desired.name]
            if live is None or live.status is None:
                continue
            if desired.retry_failed_before is not None:
                wanted[live.id] = "retry"
            elif manages_window(desired, live):
                wanted[live.id] = "slim"
    return wanted


def run_actions(
    desired: DesiredBackfill, live: LiveBackfill, runs: Sequence[Run] | None
) -> tuple[list[Action], tuple[str, ...]]:
    """Runs for the dates the window gains, retries of failed dates, cancels of the dates it loses."""
    if runs is None or live.status is None:
        return [], ()
    actions: list[Action] = []
    notes: tuple[str, ...] = ()
    window = desired.schedule or live.schedule()
    gained: frozenset[datetime] = frozenset()
    if desired.schedule is not None and manages_window(desired, live):
        change = window_change(desired.schedule, runs, live.schedule())
        if change.gained:
            actions.append(Action("run", runs=len(change.gained), dates=change.gained))
            gained = frozenset(change.gained)
        notes = _returning(change.returning) + (
            _left_behind(desired.schedule, runs) if not change.moved else ()
        )
        if change.lost:
            lost = tuple(run.execution_date for run in change.lost if run.execution_date is not None)
            actions.append(Action("cancel_runs", runs=len(lost), dates=lost))
    if desired.retry_failed_before is not None:
        chosen = runs_to_retry(
            window, runs, desired.retry_failed_before, backfill_cancelled=live.status == "cancelled"
        )
        # A date the window gets back is run anew, not also retried.
        dates = tuple(
            run.execution_date
            for run in chosen
            if run.execution_date is not None and run.execution_date not in gained
        )
        if dates:
            actions.insert(
                1 if actions and actions[0].kind == "run" else 0, Action("retry", len(dates), dates=dates)
            )
    return actions, notes


def manages_window(desired: DesiredBackfill, live: LiveBackfill) -> bool:
    """A started backfill's runs follow its window when it is wanted started, still runs or ran (not
    cancelled), keeps its interval, and the window's start or end changes."""
    before, after = live.schedule(), desired.schedule
    if desired.state != "started" or live.status in (None, "cancelled") or before is None or after is None:
        return False
    same_interval = (before.interval_type, before.interval_units) == (
        after.interval_type,
        after.interval_units,
    )
    return same_interval and (before.start, before.end) != (after.start, after.end)


def _returning(dates: Sequence[datetime]) -> tuple[str, ...]:
    if not dates:
        return ()
    noun = "date comes" if len(dates) == 1 else "dates come"
    return (
        f"{len(dates)} of these {noun} back into the window with a cancelled run (a narrower window "
        "cancelled it): run again, like new dates",
    )


def _left_behind(window: Schedule, runs: Sequence[Run]) -> tuple[str, ...]:
    kept = [
        run
        for date, run in latest_runs(runs).items()
        if run.status not in UNFINISHED and not in_window(window, date)
    ]
    if not kept:
        return ()
    return (f"{len(kept)} finished runs of dates no longer in the window stay in Mage",)


def edit_warnings(
    desired: DesiredBackfill, live: LiveBackfill, changes: Sequence[FieldChange], runs: Sequence[Run] | None
) -> tuple[str, ...]:
    """What an edit of a started backfill does not do to the runs it has already created."""
    changed = {change.field for change in changes} - {"name"}  # a rename does not touch the runs
    if not changed or live.status is None:
        return ()
    if changed & set(INTERVAL_KEYS):
        return (EDIT_AFTER_START_WARNING,)
    warnings: list[str] = []
    if changed & set(WINDOW_KEYS):
        if not manages_window(desired, live):
            warnings.append(
                WINDOW_NOT_MANAGED_WARNING if desired.state != "started" else EDIT_AFTER_START_WARNING
            )
        elif runs is None or desired.schedule is None or window_change(desired.schedule, runs).moved:
            warnings.append(GRID_MOVED_WARNING)
    if changed & {"variables", "settings"}:
        warnings.append(VARIABLES_AFTER_START_WARNING)
    return tuple(warnings)


def check_retry_instants(manifest: Manifest, mage_time: datetime | None) -> None:
    """retry_failed_before later than Mage's clock would retry every re-failure at every apply."""
    if mage_time is None:
        return
    late = [
        d
        for d in manifest.backfills
        if d.retry_failed_before is not None and d.retry_failed_before > mage_time
    ]
    if late:
        raise PlanError(
            *(
                PlanProblem.at(
                    desired.source,
                    f"backfill {desired.name!r}: retry_failed_before "
                    f"{format_iso(desired.retry_failed_before)} is later than Mage's clock "
                    f"({format_iso(mage_time)}){RETRY_LATER_THAN_NOW}",
                )
                for desired in late
                if desired.retry_failed_before is not None
            )
        )


def with_progress(
    plan: Plan, counts: Mapping[int, RunCounts], runs: Mapping[int, Sequence[Run]] | None = None
) -> Plan:
    """The plan with each started backfill's run progress on the items that change it (shown next to
    its actions, "completed 28/31, 3 failed"). Where the plan read a backfill's runs, only the dates of
    its window count; elsewhere Mage's run_status_counts, which also count dates that left the window."""
    seen = runs or {}

    def item_with(item: PlanItem) -> PlanItem:
        if item.live is None or not item.actions:
            return item
        progress = _progress_of(item.live, counts.get(item.live.id), seen.get(item.live.id))
        return item if progress is None else dataclasses.replace(item, progress=progress)

    pipelines = tuple(
        dataclasses.replace(pipeline, items=tuple(map(item_with, pipeline.items)))
        for pipeline in plan.pipelines
    )
    return dataclasses.replace(plan, pipelines=pipelines)


def _progress_of(live: LiveBackfill, counts: RunCounts | None, runs: Sequence[Run] | None) -> Progress | None:
    if live.status is None or (counts is None and runs is None):
        return None
    if runs is not None:
        return window_progress(live.schedule(), runs)
    assert counts is not None, "checked above"
    return progress_from_counts(counts.total, counts.by_status)


def progress_wanted(plan: Plan) -> list[LiveBackfill]:
    """Started backfills the plan acts on: their progress is worth a request each."""
    return [item.live for item in plan.items() if item.actions and item.live is not None and item.live.status]


def counts_matter(plan: Plan, counts: Mapping[int, RunCounts]) -> bool:
    """Whether run counts change an action of the plan: the runs a cancel or a delete of a backfill
    still running stops, unknown until its counts are read."""
    return any(
        action.kind in ("cancel", "delete") and action.runs is None
        for item in plan.items()
        if item.live is not None and item.live.id in counts
        for action in item.actions
    )
