"""Carry out exactly the plan that was shown, backfill by backfill, and report what happened to each.

Every item is checked against Mage as it is now before it is written: against the listing the plan was
just made from, or, for a saved plan (or one confirmed at a prompt, which may have waited), against one
fresh listing of the pipelines it touches, taken as apply begins. Progress that is the plan's own (fields
already updated, status already moved toward the target) is accepted, so a second apply finishes an
interrupted one without repeating what succeeded; anything else that changed makes the item stale and it
is refused. What a write relies on beyond the backfill's fields is read again right before it: the run
counts before a start, the runs before retries and runs for new dates, the twins before they are deleted.
The writes themselves are apply_steps.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from datetime import datetime

from backfill_sync.apply_runs import DATED_KINDS, carry_out_dates, still_to_do
from backfill_sync.apply_steps import (
    EXECUTION_ORDER,
    BackfillWriter,
    DoneElsewhere,
    being_created_elsewhere,
    carry_out,
    delete_twins,
)
from backfill_sync.compare import desired_fields, live_fields
from backfill_sync.errors import ApiError, BackfillSyncError, StalePlanError
from backfill_sync.live import read_run_lists
from backfill_sync.matching import LiveIndex, find_match
from backfill_sync.models import (
    Action,
    ApplyResult,
    ItemResult,
    LiveBackfill,
    Outcome,
    Plan,
    PlanItem,
    status_class,
    target_class,
)
from backfill_sync.plan import plan_item
from backfill_sync.plan_runs import RunNeed
from backfill_sync.render.text import format_date
from backfill_sync.runs import Run
from backfill_sync.waiting import Target
from backfill_sync.wire import is_unreadable_row

# A ceiling (as transport.DEFAULT_MAX_CONNECTIONS): the session keeps fewer requests in flight while Mage
# answers slower for them (pacing.py). 16 at 20 ms per request gives ten times one-at-a-time.
DEFAULT_PARALLELISM = 16
DEFAULT_MAX_TOTAL_RUNS = 10_000
# Actions that set runs off: what the run budget counts, and what apply --wait always waits for.
RUN_SETTING_KINDS = frozenset({"start", "restart", "retry", "run"})


def planned_runs(plan: Plan) -> int:
    """Pipeline runs the plan sets off: starts, restarts, retries, new dates (blocked ones excluded)."""
    return sum(
        action.runs or 0
        for action in plan.actions()
        if action.kind in RUN_SETTING_KINDS and not action.is_blocked
    )


def check_run_budget(plan: Plan, max_total_runs: int) -> None:
    total = planned_runs(plan)
    if total > max_total_runs:
        raise BackfillSyncError(
            f"the plan starts {total} pipeline runs, more than --max-total-runs {max_total_runs}; "
            "raise the limit if that is intended. Nothing was applied."
        )


# What Mage holds now, per pipeline the plan touches; None: that pipeline could not be listed, so each of
# its items is read alone.
Snapshot = Mapping[str, LiveIndex | None]


def apply_plan(
    plan: Plan,
    writer: BackfillWriter,
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    on_item_done: Callable[[ItemResult], None] | None = None,
    current: Snapshot | None = None,
) -> ApplyResult:
    """Apply every item with changes; independent items go on when one fails.

    `current`: Mage as it is now, when the caller has just read it (`seen_by` a plan made this moment);
    by default apply lists the pipelines it touches once, before writing anything.

    On Ctrl-C, items already being written are finished (a backfill is never left between two of its
    requests by us) and the ones not begun are reported as skipped.
    """
    items = [item for item in plan.items() if item.has_changes()]
    if current is None:
        current = read_current(writer, {item.pipeline_uuid for item in items})
    pool = ThreadPoolExecutor(max_workers=max(1, parallelism))
    futures = {
        pool.submit(apply_item, item, writer, plan.allow_restart, current.get(item.pipeline_uuid)): item
        for item in items
    }
    done: dict[Future[ItemResult], ItemResult] = {}
    interrupted = False
    try:
        for future in as_completed(futures):  # in the caller's thread, so callbacks need no locks
            done[future] = future.result()
            if on_item_done is not None:
                on_item_done(done[future])
    except KeyboardInterrupt:
        interrupted = True
        pool.shutdown(wait=True, cancel_futures=True)
        for future in futures:
            if future not in done and not future.cancelled():
                done[future] = future.result()
    finally:
        pool.shutdown(wait=True)
    results = tuple(done.get(future) or _skipped(item) for future, item in futures.items())
    return ApplyResult(results, interrupted=interrupted)


def seen_by(plan: Plan) -> Snapshot:
    """What the plan saw of each pipeline: the backfills it manages and the unmanaged ones (twins, found
    again by id when they are deleted, aside). A plan made a moment ago is Mage as it is now."""
    return {
        pipeline.pipeline_uuid: LiveIndex.of(
            [item.live for item in pipeline.items if item.live is not None] + list(pipeline.unmanaged)
        )
        for pipeline in plan.pipelines
    }


def read_current(writer: BackfillWriter, pipeline_uuids: Collection[str]) -> Snapshot:
    """One fresh listing of the pipelines (of every backfill, or one per pipeline: whichever takes fewer
    requests). A row Mage cannot read back breaks a listing that holds it: then each pipeline is listed
    alone, and the items of one that still cannot be listed are read one by one, as they come."""
    try:
        listed = writer.list_backfills_of(pipeline_uuids)
    except ApiError as exc:
        if not is_unreadable_row(exc):
            raise
        return {uuid: _listed_alone(writer, uuid) for uuid in sorted(pipeline_uuids)}
    return {uuid: LiveIndex.of(rows) for uuid, rows in listed.items()}


def _listed_alone(writer: BackfillWriter, pipeline_uuid: str) -> LiveIndex | None:
    try:
        return LiveIndex.of(writer.list_backfills(pipeline_uuid))
    except ApiError as exc:
        if not is_unreadable_row(exc):
            raise
        return None


def wait_targets(plan: Plan, result: ApplyResult) -> list[Target]:
    """What `apply --wait` waits for: the backfills this apply started, restarted, retried or ran new
    dates of, plus every other started backfill of the plan that is still running."""
    outcomes = {(r.pipeline_uuid, r.name): r for r in result.items}
    targets: list[Target] = []
    for item in plan.items():
        done = outcomes.get((item.pipeline_uuid, item.name))
        live_id = done.live_id if done is not None else item.live_id
        if live_id is None or item.desired.state == "absent":
            continue
        touched = (
            done is not None
            and done.outcome in ("done", "unchanged")
            and any(action.kind in RUN_SETTING_KINDS for action in item.actions)
        )
        if touched or (item.live is not None and item.live.status is not None):
            targets.append(
                Target(item.pipeline_uuid, _known_live(item, live_id), item.desired, always=touched)
            )
    return targets


def _known_live(item: PlanItem, live_id: int) -> LiveBackfill:
    """The backfill as the plan knew it (the wait reads it again at once); for a create, its fields."""
    if item.live is not None:
        return item.live
    schedule = item.desired.schedule
    return LiveBackfill(
        id=live_id,
        pipeline_uuid=item.pipeline_uuid,
        name=item.desired.name,
        start_datetime=None if schedule is None else schedule.start,
        end_datetime=None if schedule is None else schedule.end,
        interval_type=None if schedule is None else schedule.interval_type,
        interval_units=None if schedule is None else schedule.interval_units,
        variables=item.desired.variables,
        settings=item.desired.settings,
        status=None,
    )


def _skipped(item: PlanItem) -> ItemResult:
    return ItemResult(
        item.pipeline_uuid, item.name, item.live_id, "skipped", (), "interrupted before it began"
    )


def apply_item(
    item: PlanItem, writer: BackfillWriter, allow_restart: bool, current: LiveIndex | None = None
) -> ItemResult:
    """Find the item's backfill as Mage has it now, refuse the item if Mage moved elsewhere, else do what
    is left of it. `current`: its pipeline as Mage holds it now; None: read the backfill alone.
    """
    steps: list[str] = []
    try:
        live = _refresh(item, writer, current)
        _check_still_planned(item, live)
        runs = _runs_now(item, live, writer)
        todo, already = _remaining_actions(item, live, allow_restart, runs)
        remark = _already_done(already)
        if not todo:
            return _result(item, live, "unchanged", steps, remark or "already as planned")
        blocked = [action for action in todo if action.is_blocked]
        if blocked:
            return _result(item, live, "blocked", steps, blocked[0].blocked)
        for action in sorted(todo, key=lambda action: EXECUTION_ORDER.index(action.kind)):
            if action.kind in DATED_KINDS:
                assert live is not None, "run actions are planned for live backfills only"
                carry_out_dates(action, item.desired, live, runs or (), writer.runs, steps)
            elif action.kind == "delete_twins":
                delete_twins(action, item.desired, writer, steps)
            else:
                live = carry_out(action, item.desired, live, writer, steps)
    except StalePlanError as exc:
        return _result(item, None, "stale", steps, str(exc))
    except DoneElsewhere as exc:
        return _result(item, None, "unchanged", steps, str(exc))
    except BackfillSyncError as exc:
        return _result(item, None, "failed", steps, str(exc))
    return _result(
        item,
        live,
        "done" if steps else "unchanged",
        steps,
        remark or (None if steps else "already as planned"),
    )


def _runs_now(item: PlanItem, live: LiveBackfill | None, writer: BackfillWriter) -> list[Run] | None:
    """The backfill's runs, read again just before the run actions that rely on them."""
    kinds = {action.kind for action in item.actions}
    if live is None or not kinds & set(DATED_KINDS):
        return None
    need: RunNeed = "retry" if "retry" in kinds else "slim"
    cancelled = {live.id} if live.status == "cancelled" else set()
    return read_run_lists(writer.runs, {live.id: need}, cancelled)[live.id]


def _already_done(dates: Sequence[datetime]) -> str | None:
    if not dates:
        return None
    shown = ", ".join(format_date(date) for date in dates[:5]) + (" ..." if len(dates) > 5 else "")
    return f"already done meanwhile (by another apply?): {shown}"


def _refresh(item: PlanItem, writer: BackfillWriter, current: LiveIndex | None) -> LiveBackfill | None:
    """The backfill as Mage has it now: by id when the plan saw one, else by name in the pipeline."""
    if item.live is not None:
        return current.by_id.get(item.live.id) if current is not None else writer.get_backfill(item.live.id)
    if current is None:
        current = LiveIndex.of(writer.list_backfills(item.pipeline_uuid))
    return find_match(item.desired, current)


def _check_still_planned(item: PlanItem, live: LiveBackfill | None) -> None:
    """Refuse the item when Mage changed in a way that is neither the plan's start point nor its goal."""
    if live is None:
        if item.live is not None and item.desired.state != "absent":
            raise StalePlanError(f"backfill id {item.live.id} was deleted since the plan was made")
        return
    fields_now = live_fields(live)
    if item.live is None and being_created_elsewhere(item.desired, live):
        raise DoneElsewhere(
            f"done by another apply: it created this backfill as id {live.id} since the plan was made and "
            "is still writing it; this apply leaves it to that one (plan again to see what is left)"
        )
    # An absent entry's fields are no goal (it is deleted), and it may not even have a schedule.
    known_fields = [] if item.desired.state == "absent" else [desired_fields(item.desired)]
    if item.live is not None:
        known_fields.append(live_fields(item.live))
    if fields_now not in known_fields:
        raise StalePlanError(
            f"backfill id {live.id} changed since the plan was made ({_changed_names(item, live)}); "
            "run plan again"
        )
    known_classes = {
        target_class(item.desired.state),
        "never_started" if item.live is None else status_class(item.live.status),
    }
    if status_class(live.status) not in known_classes:
        raise StalePlanError(
            f"backfill id {live.id} is now {live.status or 'never started'}, which the plan did not "
            "expect; run plan again"
        )


def _remaining_actions(
    item: PlanItem, live: LiveBackfill | None, allow_restart: bool, runs: Sequence[Run] | None
) -> tuple[list[Action], list[datetime]]:
    """What is left to do of the planned actions, planned as they were; and the dates already done."""
    fresh = plan_item(item.desired, live, allow_restart, runs)
    planned = {action.kind for action in item.actions}
    extra = [action.kind for action in fresh.actions if action.kind not in planned]
    if extra:
        raise StalePlanError(
            f"Mage changed since the plan was made: applying now would also {', '.join(extra)}; "
            "run plan again"
        )
    todo: list[Action] = []
    already: list[datetime] = []
    for action in item.actions:
        if action.kind in DATED_KINDS:
            left, done = still_to_do(action, fresh.actions)
            todo += [left] if left.dates else []
            already += done
    todo += [action for action in fresh.actions if action.kind not in DATED_KINDS]
    todo += [action for action in item.actions if action.kind == "delete_twins"]  # checked as it runs
    return todo, already


def _changed_names(item: PlanItem, live: LiveBackfill) -> str:
    before = live_fields(item.live) if item.live is not None else desired_fields(item.desired)
    now = live_fields(live)
    return ", ".join(name for name in now if now[name] != before[name]) or "fields"


def _result(
    item: PlanItem, live: LiveBackfill | None, outcome: Outcome, steps: list[str], message: str | None
) -> ItemResult:
    live_id = live.id if live is not None else item.live_id
    return ItemResult(item.pipeline_uuid, item.name, live_id, outcome, tuple(steps), message)
