"""The pipeline-run and trigger resources a backfill's runs live in (mage-runs-api.md §4.8-4.15)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from backfill_sync.emulator.apierrors import ServerError, not_found
from backfill_sync.emulator.auth import PIPELINE_RUNS, PIPELINE_SCHEDULES, authorize
from backfill_sync.emulator.backfills import page_of
from backfill_sync.emulator.context import Context
from backfill_sync.emulator.handlers import body_object
from backfill_sync.emulator.presenters import (
    present_project,
    present_run,
    present_run_basic,
    present_run_detail,
    present_run_record,
    present_trigger,
)
from backfill_sync.emulator.runs import add_run, cancel_run, latest_runs, retry_run, set_trigger_status
from backfill_sync.emulator.state import RunRow, TriggerRow
from backfill_sync.emulator.values import now_utc, parse_int, parse_request_datetime
from backfill_sync.emulator.wire import Request, Response, ok

BASIC_FORMAT = "with_basic_details"
LAST_RUN_FAILED = "last_run_failed"
MAGE_VERSION = "0.9.80"
# PipelineRun columns `order_by[]` may name (the emulator keeps these; Mage has a few more).
_COLUMNS = frozenset(
    {
        "backfill_id",
        "completed_at",
        "created_at",
        "execution_date",
        "id",
        "pipeline_schedule_id",
        "pipeline_uuid",
        "started_at",
        "status",
        "updated_at",
    }
)


def list_pipeline_runs(ctx: Context, request: Request, trigger_pk: str | None = None) -> Response:
    """The run list: filters, Mage's order (execution_date DESC, id DESC), `limit+1` paging, and the
    "retries grouping" that breaks paging when `pipeline_uuid` or a parent trigger is given (§6.8)."""
    authorize(ctx.identity, PIPELINE_RUNS, "list", request.query)
    limit, offset = page_of(request)
    with ctx.store.lock:
        trigger = _trigger(ctx, trigger_pk) if trigger_pk is not None else None
        ordered = _ordered(request, _filtered(ctx, request, trigger))
        if limit <= 0:
            return ok(
                {"pipeline_runs": [], "metadata": {"count": len(ordered), "next": bool(ordered) or limit < 0}}
            )
        fetched = ordered[max(offset, 0) : max(offset, 0) + limit + 1]
        grouped = trigger is not None or request.first("pipeline_uuid") is not None
        if grouped and _grouping_on(request) and ordered:
            fetched = _group_retries(ordered, fetched)
        has_next = len(fetched) > limit
        page = fetched[: len(fetched) - 1 if has_next else len(fetched)]
        items = [_present_listed(ctx, request, run) for run in page]
    return ok({"pipeline_runs": items, "metadata": {"count": len(ordered), "next": has_next}})


def _filtered(ctx: Context, request: Request, trigger: TriggerRow | None) -> list[RunRow]:
    runs = list(ctx.store.runs.values())
    status = request.first("status")
    if status == LAST_RUN_FAILED:
        runs = [run for run in _latest_by_trigger(runs) if run.status == "failed"]
    elif status is not None:
        runs = [run for run in runs if run.status == status]
    statuses = request.first("status[]")
    if statuses:
        wanted = statuses.split(",")
        runs = [run for run in runs if run.status in wanted]
    backfill_id = request.first("backfill_id")
    if backfill_id:
        number = parse_int(backfill_id)
        runs = [run for run in runs if run.backfill_id == number]
    if trigger is not None:
        runs = [run for run in runs if run.pipeline_schedule_id == trigger.id]
    pipeline_uuid = request.first("pipeline_uuid")
    if pipeline_uuid:
        runs = [run for run in runs if run.pipeline_uuid == pipeline_uuid]
    return runs


def _latest_by_trigger(runs: list[RunRow]) -> list[RunRow]:
    """`last_run_failed` keeps the newest run (highest id) per (execution_date, trigger, pipeline)."""
    groups: dict[tuple[Any, ...], list[RunRow]] = {}
    for run in runs:
        groups.setdefault((run.pipeline_schedule_id, run.pipeline_uuid), []).append(run)
    return [run for group in groups.values() for run in latest_runs(group)]


def _ordered(request: Request, runs: list[RunRow]) -> list[RunRow]:
    spec = request.first("order_by[]")
    if not spec:
        runs.sort(key=lambda run: run.id, reverse=True)
        runs.sort(key=lambda run: run.execution_date or datetime.min, reverse=True)
        return runs
    for part in reversed(spec.split(",")):
        column, _, direction = part.strip().partition(" ")
        if column not in _COLUMNS:
            raise ServerError(f"type object 'PipelineRun' has no attribute '{column}'", "AttributeError")
        runs.sort(key=_sort_key(column), reverse=direction.strip().lower() == "desc")
    return runs


def _sort_key(column: str) -> Callable[[RunRow], Any]:
    def key(run: RunRow) -> Any:
        value = getattr(run, column)
        return (value is not None, value if value is not None else 0)

    return key


def _grouping_on(request: Request) -> bool:
    value = request.first("disable_retries_grouping")
    return not value or value == "false"


def _group_retries(ordered: list[RunRow], fetched: list[RunRow]) -> list[RunRow]:
    """Mage's retries grouping, bug for bug: drop the page's first date if it continues from the page
    before and its last date, then append every run of that last date; past the end it fails."""
    if not fetched:
        raise ServerError("list index out of range", "IndexError")
    first, last = fetched[0], fetched[-1]
    dropped = [last.execution_date]
    first_of_date = next(run for run in ordered if run.execution_date == first.execution_date)
    if first_of_date.id != first.id:
        dropped.append(first.execution_date)
    same_as_last = [run for run in ordered if run.execution_date == last.execution_date]
    return [run for run in fetched if run.execution_date not in dropped] + same_as_last


def _present_listed(ctx: Context, request: Request, run: RunRow) -> dict[str, Any]:
    if request.first("_format") == BASIC_FORMAT:
        return present_run_basic(run)
    return present_run(run, ctx.store.trigger_of(run))


def show_pipeline_run(ctx: Context, request: Request, pk: str) -> Response:
    authorize(ctx.identity, PIPELINE_RUNS, "detail", {})
    with ctx.store.lock:
        run = _run(ctx, pk)
        data = present_run_basic(run) if request.first("_format") == BASIC_FORMAT else present_run_detail(run)
    return ok({"pipeline_run": data, "metadata": None})


def update_pipeline_run(ctx: Context, request: Request, pk: str) -> Response:
    """`retry_blocks` retries the run in place; `status: cancelled` stops it; anything else is a no-op."""
    payload = body_object(request, "pipeline_run")
    with ctx.store.lock:
        run = _run(ctx, pk)
        authorize(ctx.identity, PIPELINE_RUNS, "update", request.query, payload)
        if payload.get("pipeline_run_action") == "retry_blocks":
            retry_run(run)
        elif payload.get("status") == "cancelled":
            cancel_run(run)
        data = present_run_record(run)
    return ok({"pipeline_run": data, "metadata": None})


def create_pipeline_run(ctx: Context, request: Request, trigger_pk: str) -> Response:
    """A run on a trigger, for any date and any backfill: nothing checks the window or duplicates, the
    server only adds `execution_partition`, and a backfill's trigger is not re-activated (§4.13 B)."""
    payload = body_object(request, "pipeline_run")
    with ctx.store.lock:
        trigger = ctx.store.triggers.get(_int_or_none(trigger_pk) or 0)
        if trigger is None:
            raise ServerError("'NoneType' object has no attribute 'pipeline_uuid'", "AttributeError")
        authorize(ctx.identity, PIPELINE_RUNS, "create", request.query, payload)
        date = parse_request_datetime(payload.get("execution_date")) or now_utc()
        variables = dict(payload.get("variables") or {})
        variables["execution_partition"] = f"{trigger.id}/{date.strftime('%Y%m%dT%H%M%S_%f')}"
        backfill_id = payload.get("backfill_id")
        run = add_run(
            ctx.store, trigger, backfill_id if isinstance(backfill_id, int) else None, date, variables
        )
        data = present_run_record(run)
    return ok({"pipeline_run": data, "metadata": None})


def show_pipeline_schedule(ctx: Context, request: Request, pk: str) -> Response:
    authorize(ctx.identity, PIPELINE_SCHEDULES, "detail", request.query)
    with ctx.store.lock:
        data = present_trigger(_trigger(ctx, pk))
    return ok({"pipeline_schedule": data, "metadata": None})


def update_pipeline_schedule(ctx: Context, request: Request, pk: str) -> Response:
    payload = body_object(request, "pipeline_schedule")
    with ctx.store.lock:
        trigger = _trigger(ctx, pk)
        authorize(ctx.identity, PIPELINE_SCHEDULES, "update", request.query, payload)
        if payload.get("status") in ("active", "inactive"):
            set_trigger_status(trigger, str(payload["status"]))
        data = present_trigger(trigger)
    return ok({"pipeline_schedule": data, "metadata": None})


def list_projects(ctx: Context, request: Request) -> Response:
    with_version = not ctx.identity.auth_on or ctx.identity.user is not None
    return ok({"projects": [present_project(MAGE_VERSION, with_version)], "metadata": {}})


def _run(ctx: Context, pk: str) -> RunRow:
    run = ctx.store.runs.get(_int_or_none(pk) or 0)
    if run is None:
        raise not_found(ctx.store.not_found_message)
    return run


def _trigger(ctx: Context, pk: str) -> TriggerRow:
    trigger = ctx.store.triggers.get(_int_or_none(pk) or 0)
    if trigger is None:
        raise not_found(ctx.store.not_found_message)
    return trigger


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
