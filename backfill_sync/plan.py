"""PURE: match manifests to live backfills and decide, per backfill, what apply would do. No I/O.

Matching is matching.py's; what happens to a started backfill's runs (retries, dates a window gains or
loses) is plan_runs.py's; this module puts a backfill's record, status and run actions together.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime

from backfill_sync.compare import desired_fields, diff_fields, fingerprint, live_fields
from backfill_sync.errors import PlanError, PlanProblem
from backfill_sync.matching import LiveIndex, match_backfills, name_candidates, rename_hints, twins_of
from backfill_sync.models import (
    LIVE_STATUSES,
    Action,
    DesiredBackfill,
    LiveBackfill,
    Manifest,
    PipelinePlan,
    Plan,
    PlanItem,
)
from backfill_sync.plan_runs import check_retry_instants, edit_warnings, run_actions
from backfill_sync.runs import Run
from backfill_sync.schedule import count_runs

UNFINISHED_RUN_STATUSES = ("initial", "running")
RESTART_BLOCKED = "restarting re-creates every run; pass --allow-restart to plan and apply it"
RUNS_STAY_NOTE = "Mage keeps its pipeline runs after the backfill is deleted"


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
            check_retry_instants(manifest, mage_time)
            pipelines.append(plan_pipeline(manifest, live, allow_restart, runs or {}))
        except PlanError as exc:
            problems.extend(exc.problems)
    if problems:
        raise PlanError(*problems)
    return Plan(
        mage_url=mage_url, pipelines=tuple(pipelines), allow_restart=allow_restart, mage_time=mage_time
    )


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
            else twins_of(desired, name_candidates(desired, index))
        )
        if twins:
            claimed.update(twin.id for twin in twins)
            item = with_twins_removed(item, twins)
        items.append(item)
    # By id, whatever order Mage listed them in: a PR comment's diff changes only when they do.
    unmanaged = tuple(sorted((b for b in live if b.id not in claimed), key=lambda backfill: backfill.id))
    items = [_with_rename_hints(item, unmanaged) for item in items]
    return PipelinePlan(pipeline_uuid=manifest.pipeline_uuid, items=tuple(items), unmanaged=unmanaged)


def _with_rename_hints(item: PlanItem, unmanaged: Sequence[LiveBackfill]) -> PlanItem:
    """A create that looks like a rename of an unmanaged backfill says so (it would run every date
    again); the entry's previous_names would keep the one there is."""
    if not any(action.kind == "create" for action in item.actions):
        return item
    hints = rename_hints(item.desired, unmanaged)
    return dataclasses.replace(item, warnings=(*item.warnings, *hints)) if hints else item


def with_twins_removed(item: PlanItem, twins: Sequence[LiveBackfill]) -> PlanItem:
    """The item, first deleting the twins an earlier create left beside the backfill it manages."""
    ids = tuple(twin.id for twin in twins)
    note = (
        f"ids {', '.join(map(str, ids))} are never-started twins of id {item.live_id} (a create whose "
        "answer was lost, or two applies at once): the lowest id stays, the others are deleted"
    )
    action = Action("delete_twins", runs=0, ids=ids)
    return dataclasses.replace(item, actions=(action, *item.actions), notes=(*item.notes, note))


def plan_item(
    desired: DesiredBackfill,
    live: LiveBackfill | None,
    allow_restart: bool,
    runs: Sequence[Run] | None = None,
) -> PlanItem:
    """What apply would do to one backfill. `runs`: its run list, when `run_lists_wanted` asked for it."""
    if live is None:
        return _plan_new(desired)
    before = live_fields(live)
    changes = () if desired.state == "absent" else diff_fields(before, desired_fields(desired))
    for_runs, run_notes = run_actions(desired, live, runs)
    actions = (
        ([Action("update")] if changes else []) + for_runs + _status_actions(desired, live, allow_restart)
    )
    return PlanItem(
        pipeline_uuid=desired.pipeline_uuid,
        name=desired.name,
        desired=desired,
        live=live,
        changes=changes,
        actions=tuple(actions),
        warnings=edit_warnings(desired, live, changes, runs) + _unknown_status_warning(live),
        notes=_status_notes(desired, live) + run_notes,
        fingerprint=fingerprint(live, before),
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
