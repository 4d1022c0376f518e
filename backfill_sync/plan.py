"""PURE: match manifests to live backfills and decide, per backfill, what apply would do. No I/O.

Besides the record (fields and status), a started backfill's runs are reconciled where the manifest asks:
`retry_failed_before` retries the dates that failed before it, and a window that gains dates (same
interval, same grid) runs exactly those, while the unfinished runs of dates it loses are cancelled. Those
decisions come from the run lists the caller read for the backfills `run_lists_wanted` names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from backfill_sync.compare import desired_fields, diff_fields, fingerprint, live_fields
from backfill_sync.datetimes import format_iso
from backfill_sync.errors import PlanError, PlanProblem
from backfill_sync.models import (
    LIVE_STATUSES,
    Action,
    DesiredBackfill,
    FieldChange,
    LiveBackfill,
    Manifest,
    PipelinePlan,
    Plan,
    PlanItem,
    RunCounts,
    Schedule,
)
from backfill_sync.runs import (
    RETRY_LATER_THAN_NOW,
    Run,
    in_window,
    latest_runs,
    progress_from_counts,
    runs_to_retry,
    window_change,
)
from backfill_sync.schedule import count_runs

UNFINISHED_RUN_STATUSES = ("initial", "running")
RESTART_BLOCKED = "restarting re-creates every run; pass --allow-restart to plan and apply it"
RUNS_STAY_NOTE = "Mage keeps its pipeline runs after the backfill is deleted"
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


def compute_plan(
    manifests: Sequence[Manifest],
    live_by_pipeline: Mapping[str, Sequence[LiveBackfill]],
    *,
    mage_url: str,
    allow_restart: bool = False,
    runs: Mapping[int, Sequence[Run]] | None = None,
    mage_time: datetime | None = None,
) -> Plan:
    """The plan for every manifest against the live backfills of its pipeline.

    `runs` holds the run lists of the backfills `run_lists_wanted` named; `mage_time` is Mage's clock,
    which no `retry_failed_before` may be later than. Problems of every pipeline are reported together
    (one PlanError), not only the first one met.
    """
    pipelines: list[PipelinePlan] = []
    problems: list[PlanProblem] = []
    for manifest in manifests:
        try:
            live = live_by_pipeline.get(manifest.pipeline_uuid, ())
            _check_retry_instants(manifest, mage_time)
            pipelines.append(plan_pipeline(manifest, live, allow_restart, runs or {}))
        except PlanError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PlanError(*problems)
    return Plan(
        mage_url=mage_url, pipelines=tuple(pipelines), allow_restart=allow_restart, mage_time=mage_time
    )


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
            elif _manages_window(desired, live):
                wanted[live.id] = "slim"
    return wanted


def plan_pipeline(
    manifest: Manifest,
    live: Sequence[LiveBackfill],
    allow_restart: bool,
    runs: Mapping[int, Sequence[Run]] | None = None,
) -> PipelinePlan:
    matches = match_backfills(manifest, live)
    claimed = {backfill.id for backfill in matches.values() if backfill is not None}
    seen = runs or {}

    def runs_of(live: LiveBackfill | None) -> Sequence[Run] | None:
        return None if live is None else seen.get(live.id)

    index = LiveIndex.of(live)
    items = []
    for desired in manifest.backfills:
        match = matches[desired.name]
        item = plan_item(desired, match, allow_restart, runs_of(match))
        twins = (
            ()
            if match is None or desired.id is not None
            else twins_of(desired, index.by_name.get(desired.name, ()))
        )
        if twins:
            claimed.update(twin.id for twin in twins)
            item = with_twins_removed(item, twins)
        items.append(item)
    unmanaged = tuple(backfill for backfill in live if backfill.id not in claimed)
    return PipelinePlan(pipeline_uuid=manifest.pipeline_uuid, items=tuple(items), unmanaged=unmanaged)


def with_twins_removed(item: PlanItem, twins: Sequence[LiveBackfill]) -> PlanItem:
    """The item, first deleting the twins an earlier create left beside the backfill it manages."""
    ids = tuple(twin.id for twin in twins)
    note = (
        f"ids {', '.join(map(str, ids))} are never-started twins of id {item.live_id} (a create whose "
        "answer was lost, or two applies at once): the lowest id stays, the others are deleted"
    )
    action = Action("delete_twins", runs=0, ids=ids)
    return dataclasses.replace(item, actions=(action, *item.actions), notes=(*item.notes, note))


def match_backfills(manifest: Manifest, live: Sequence[LiveBackfill]) -> dict[str, LiveBackfill | None]:
    """For each desired backfill (by name), the one live backfill it manages, or None (to create)."""
    index = LiveIndex.of(live)
    matches = {desired.name: find_match(desired, index) for desired in manifest.backfills}
    _check_claimed_once(manifest, matches)
    return matches


@dataclass(frozen=True, slots=True)
class LiveIndex:
    """One pipeline's live backfills by id and by name, so matching a manifest costs one pass."""

    by_id: Mapping[int, LiveBackfill]
    by_name: Mapping[str | None, Sequence[LiveBackfill]]

    @classmethod
    def of(cls, live: Sequence[LiveBackfill]) -> LiveIndex:
        by_name: dict[str | None, list[LiveBackfill]] = {}
        for backfill in live:
            by_name.setdefault(backfill.name, []).append(backfill)
        return cls({backfill.id: backfill for backfill in live}, by_name)


def find_match(desired: DesiredBackfill, live: LiveIndex) -> LiveBackfill | None:
    """By pinned id, else by name, else by a previous name. More than one candidate is an error, except
    for twins: never-started backfills of the desired name that a create whose answer was lost (or two
    applies at once) left beside the one with the lowest id, which is the match."""
    if desired.id is not None:
        return _match_pinned_id(desired, live)
    candidates = name_candidates(desired, live)
    if len(candidates) > 1 and twins_of(desired, candidates):
        return min(candidates, key=lambda backfill: backfill.id)
    if len(candidates) > 1:
        ids = ", ".join(str(backfill.id) for backfill in sorted(candidates, key=lambda b: b.id))
        raise PlanError(
            PlanProblem.at(
                desired.source,
                f"backfill {desired.name!r} of pipeline {desired.pipeline_uuid!r} matches "
                f"several live backfills (ids {ids}); pin the one to manage with `id:`",
            )
        )
    return candidates[0] if candidates else None


def name_candidates(desired: DesiredBackfill, live: LiveIndex) -> list[LiveBackfill]:
    """The live backfills named as the desired one is, or was (previous_names)."""
    names = dict.fromkeys((desired.name, *desired.previous_names))
    return [backfill for name in names for backfill in live.by_name.get(name, ())]


def twins_of(desired: DesiredBackfill, candidates: Sequence[LiveBackfill]) -> tuple[LiveBackfill, ...]:
    """The candidates beside the lowest id when all of them are never-started twins of the desired
    name; () when the candidates are not just such twins (then the match is ambiguous)."""
    rest = sorted(candidates, key=lambda backfill: backfill.id)[1:]
    if rest and all(twin.name == desired.name and twin.status is None for twin in rest):
        return tuple(rest)
    return ()


def plan_item(
    desired: DesiredBackfill,
    live: LiveBackfill | None,
    allow_restart: bool,
    runs: Sequence[Run] | None = None,
) -> PlanItem:
    """What apply would do to one backfill. `runs`: its run list, when `run_lists_wanted` asked for it."""
    if live is None:
        return _plan_new(desired)
    changes = () if desired.state == "absent" else diff_fields(live_fields(live), desired_fields(desired))
    run_actions, run_notes = _run_actions(desired, live, runs)
    actions = (
        ([Action("update")] if changes else []) + run_actions + _status_actions(desired, live, allow_restart)
    )
    return PlanItem(
        pipeline_uuid=desired.pipeline_uuid,
        name=desired.name,
        desired=desired,
        live=live,
        changes=changes,
        actions=tuple(actions),
        warnings=_edit_warnings(desired, live, changes, runs) + _unknown_status_warning(live),
        notes=_status_notes(desired, live) + run_notes,
        fingerprint=fingerprint(live),
    )


def _run_actions(
    desired: DesiredBackfill, live: LiveBackfill, runs: Sequence[Run] | None
) -> tuple[list[Action], tuple[str, ...]]:
    """Runs for the dates the window gains, retries of failed dates, cancels of the dates it loses."""
    if runs is None or live.status is None:
        return [], ()
    actions: list[Action] = []
    notes: tuple[str, ...] = ()
    window = desired.schedule or live.schedule()
    if desired.schedule is not None and _manages_window(desired, live):
        change = window_change(desired.schedule, runs)
        if change.gained:
            actions.append(Action("run", runs=len(change.gained), dates=change.gained))
        notes = _left_behind(desired.schedule, runs) if not change.moved else ()
        if change.lost:
            lost = tuple(run.execution_date for run in change.lost if run.execution_date is not None)
            actions.append(Action("cancel_runs", runs=len(lost), dates=lost))
    if desired.retry_failed_before is not None:
        chosen = runs_to_retry(
            window, runs, desired.retry_failed_before, backfill_cancelled=live.status == "cancelled"
        )
        dates = tuple(run.execution_date for run in chosen if run.execution_date is not None)
        if dates:
            actions.insert(
                1 if actions and actions[0].kind == "run" else 0, Action("retry", len(dates), dates=dates)
            )
    return actions, notes


def _manages_window(desired: DesiredBackfill, live: LiveBackfill) -> bool:
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


def _left_behind(window: Schedule, runs: Sequence[Run]) -> tuple[str, ...]:
    kept = [
        run
        for date, run in latest_runs(runs).items()
        if run.status not in UNFINISHED_RUN_STATUSES and not in_window(window, date)
    ]
    if not kept:
        return ()
    return (f"{len(kept)} finished runs of dates no longer in the window stay in Mage",)


def _edit_warnings(
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
        if not _manages_window(desired, live):
            warnings.append(
                WINDOW_NOT_MANAGED_WARNING if desired.state != "started" else EDIT_AFTER_START_WARNING
            )
        elif runs is None or desired.schedule is None or window_change(desired.schedule, runs).moved:
            warnings.append(GRID_MOVED_WARNING)
    if changed & {"variables", "settings"}:
        warnings.append(VARIABLES_AFTER_START_WARNING)
    return tuple(warnings)


def _check_retry_instants(manifest: Manifest, mage_time: datetime | None) -> None:
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


def _plan_new(desired: DesiredBackfill) -> PlanItem:
    if desired.state == "absent":
        return PlanItem(desired.pipeline_uuid, desired.name, desired, None, (), (), notes=("already absent",))
    after = desired_fields(desired)
    changes = tuple(c for c in diff_fields(dict.fromkeys(after), after) if c.after != {})
    actions = [Action("create")]
    if desired.state == "started":
        actions.append(Action("start", runs=_runs_of(desired)))
    elif desired.state == "cancelled":
        actions.append(Action("cancel", runs=0))
    return PlanItem(desired.pipeline_uuid, desired.name, desired, None, changes, tuple(actions))


def _status_actions(desired: DesiredBackfill, live: LiveBackfill, allow_restart: bool) -> list[Action]:
    status = live.status
    if desired.state == "started":
        if status is None:
            return [Action("start", runs=_runs_of(desired))]
        if status == "cancelled":
            blocked = None if allow_restart else RESTART_BLOCKED
            return [Action("restart", runs=_runs_of(desired), blocked=blocked)]
    elif desired.state == "cancelled":
        if status is None:
            return [Action("cancel", runs=0)]
        if status in UNFINISHED_RUN_STATUSES:
            return [Action("cancel", runs=unfinished_runs(live))]
    elif desired.state == "absent":
        return [Action("delete", runs=unfinished_runs(live) if status in UNFINISHED_RUN_STATUSES else 0)]
    return []


def _runs_of(desired: DesiredBackfill) -> int:
    """The runs a start sets off; only started entries ask, and the schema gives those a schedule."""
    assert desired.schedule is not None, f"backfill {desired.name!r} is started without a schedule"
    return count_runs(desired.schedule)


def _status_notes(desired: DesiredBackfill, live: LiveBackfill) -> tuple[str, ...]:
    if desired.state == "cancelled" and live.status in ("completed", "failed"):
        return (f"already {live.status}: nothing left to cancel",)
    if desired.state == "absent":
        return (RUNS_STAY_NOTE,)  # the action line already says it stops the unfinished runs first
    return ()


def _unknown_status_warning(live: LiveBackfill) -> tuple[str, ...]:
    known = (None, *LIVE_STATUSES)
    return () if live.status in known else (f"Mage reports an unknown status {live.status!r}",)


def unfinished_runs(live: LiveBackfill) -> int | None:
    """Runs a cancel would stop, when Mage told us its run counts; None when unknown."""
    counts = live.run_status_counts
    if counts is None:
        return None
    return sum(counts.get(status, 0) for status in UNFINISHED_RUN_STATUSES)


def _match_pinned_id(desired: DesiredBackfill, live: LiveIndex) -> LiveBackfill:
    found = live.by_id.get(desired.id) if desired.id is not None else None
    if found is not None:
        _check_rename_is_free(desired, found, live)
        return found
    # Mage's routes do not check the parent pipeline: an id of another pipeline would be edited silently.
    raise PlanError(
        PlanProblem.at(
            desired.source,
            f"backfill {desired.name!r} pins id {desired.id}, which is not a backfill of "
            f"pipeline {desired.pipeline_uuid!r} in Mage; fix or remove `id:`",
        )
    )


def _check_rename_is_free(desired: DesiredBackfill, found: LiveBackfill, live: LiveIndex) -> None:
    """Renaming a pinned backfill onto the name of another would leave two with one name in Mage."""
    if found.name == desired.name:
        return
    holders = [backfill.id for backfill in live.by_name.get(desired.name, ()) if backfill.id != found.id]
    if holders:
        raise PlanError(
            PlanProblem.at(
                desired.source,
                f"backfill id {found.id} would be renamed to {desired.name!r}, the name of "
                f"live backfill id {holders[0]} of pipeline {desired.pipeline_uuid!r}; rename or delete "
                "that one first (two backfills with one name cannot be told apart by name)",
            )
        )


def _check_claimed_once(manifest: Manifest, matches: Mapping[str, LiveBackfill | None]) -> None:
    claimants: dict[int, list[str]] = {}
    for name, backfill in matches.items():
        if backfill is not None:
            claimants.setdefault(backfill.id, []).append(name)
    for backfill_id, names in claimants.items():
        if len(names) > 1:
            listed = ", ".join(repr(name) for name in names)
            last = next((b.source for b in manifest.backfills if b.name == names[-1]), None)
            raise PlanError(
                PlanProblem.at(
                    last,
                    f"backfills {listed} all match live backfill id {backfill_id} of "
                    f"pipeline {manifest.pipeline_uuid!r}; each live backfill can be managed by one entry",
                    file=manifest.path,
                )
            )


def with_progress(plan: Plan, counts: Mapping[int, RunCounts]) -> Plan:
    """The plan with each started backfill's run progress on the items that change it (shown next to
    its actions, "completed 28/31, 3 failed"); counts come from Mage's run_status_counts."""

    def item_with(item: PlanItem) -> PlanItem:
        found = None if item.live is None else counts.get(item.live.id)
        if found is None or not item.actions:
            return item
        return dataclasses.replace(item, progress=progress_from_counts(found.total, found.by_status))

    pipelines = tuple(
        dataclasses.replace(pipeline, items=tuple(map(item_with, pipeline.items)))
        for pipeline in plan.pipelines
    )
    return dataclasses.replace(plan, pipelines=pipelines)


def progress_wanted(plan: Plan) -> list[LiveBackfill]:
    """Started backfills the plan acts on: their progress is worth a request each."""
    return [item.live for item in plan.items() if item.actions and item.live is not None and item.live.status]
