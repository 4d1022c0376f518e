"""Small typed builders for test values: desired and live backfills, manifests, plans."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from backfill_sync.datetimes import parse_mage_datetime, parse_manifest_datetime
from backfill_sync.models import (
    DesiredBackfill,
    DesiredState,
    IntervalType,
    JsonObject,
    LiveBackfill,
    Manifest,
    Plan,
    RunCounts,
    Schedule,
)
from backfill_sync.plan import compute_plan
from backfill_sync.plan_runs import with_progress
from backfill_sync.runs import Run

PIPELINE = "etl_daily"
MAGE_URL = "http://127.0.0.1:6789"


def desired(
    name: str = "reload",
    *,
    pipeline: str = PIPELINE,
    start: str = "2024-01-01",
    end: str = "2024-01-31",
    interval_type: IntervalType = "day",
    units: int = 1,
    variables: JsonObject | None = None,
    settings: JsonObject | None = None,
    state: DesiredState | None = None,
    id: int | None = None,
    previous_names: Sequence[str] = (),
    description: str | None = None,
    retry_failed_before: str | None = None,
) -> DesiredBackfill:
    """A desired backfill; datetimes in the manifest grammar (naive = UTC)."""
    schedule = Schedule(parse_manifest_datetime(start), parse_manifest_datetime(end), interval_type, units)
    return DesiredBackfill(
        pipeline_uuid=pipeline,
        name=name,
        schedule=schedule,
        variables=variables,
        settings=settings,
        state=state,
        id=id,
        previous_names=tuple(previous_names),
        description=description,
        retry_failed_before=None
        if retry_failed_before is None
        else parse_manifest_datetime(retry_failed_before),
    )


def name_only_absent(name: str, *, pipeline: str = PIPELINE, id: int | None = None) -> DesiredBackfill:
    """An entry that only says "delete this": `name` and `state: absent`, no schedule."""
    return DesiredBackfill(pipeline_uuid=pipeline, name=name, schedule=None, state="absent", id=id)


def live(
    id: int = 1,
    name: str | None = "reload",
    *,
    pipeline: str = PIPELINE,
    start: str | None = "2024-01-01 00:00:00",
    end: str | None = "2024-01-31 00:00:00",
    interval_type: str | None = "day",
    units: Any = 1,
    variables: JsonObject | None = None,
    settings: JsonObject | None = None,
    status: str | None = None,
    run_status_counts: Mapping[str, int] | None = None,
    trigger: int | None = None,
) -> LiveBackfill:
    """A live backfill as the client would parse it; datetimes in Mage's naive form (UTC)."""
    return LiveBackfill(
        id=id,
        pipeline_uuid=pipeline,
        name=name,
        start_datetime=None if start is None else parse_mage_datetime(start),
        end_datetime=None if end is None else parse_mage_datetime(end),
        interval_type=interval_type,
        interval_units=units,
        variables=variables,
        settings=settings,
        status=status,
        run_status_counts=None if run_status_counts is None else dict(run_status_counts),
        pipeline_schedule_id=trigger if trigger is not None else (None if status is None else 100 + id),
    )


def manifest(*backfills: DesiredBackfill, pipeline: str = PIPELINE) -> Manifest:
    """A manifest of these backfills; their pipeline_uuid should match `pipeline`."""
    return Manifest(path=f"backfills/{pipeline}.yaml", pipeline_uuid=pipeline, backfills=tuple(backfills))


def plan_of(
    *manifests: Manifest,
    live_backfills: Sequence[LiveBackfill] = (),
    allow_restart: bool = False,
    mage_url: str = MAGE_URL,
    runs: Mapping[int, Sequence[Run]] | None = None,
    mage_time: datetime | None = None,
) -> Plan:
    """compute_plan over these manifests, the live backfills grouped by their pipeline."""
    by_pipeline: dict[str, list[LiveBackfill]] = {}
    for backfill in live_backfills:
        by_pipeline.setdefault(backfill.pipeline_uuid or PIPELINE, []).append(backfill)
    return compute_plan(
        manifests, by_pipeline, mage_url=mage_url, allow_restart=allow_restart, runs=runs, mage_time=mage_time
    )


def run(run_id: int, date: str, status: str, updated: str | None = None) -> Run:
    """A pipeline run; dates naive = UTC."""
    return Run(
        run_id, parse_mage_datetime(date), status, None if updated is None else parse_mage_datetime(updated)
    )


def january_runs(status: str = "completed", *, first_id: int = 1, days: int = 31) -> list[Run]:
    """One run per day of January 2024 (the factories' default window)."""
    return [run(first_id + day, f"2024-01-{day + 1:02d}", status) for day in range(days)]


def every_action_plan(*, one_allow_restart: bool = False) -> Plan:
    """A plan with every action type, blocked and allowed restarts, warnings, notes and unmanaged ones.

    Blocked and allowed restarts cannot both come from one `plan` run; one_allow_restart makes the
    plan one run could have made (its restart of sales_monthly blocked too), as a saved plan must be.
    """
    etl = manifest(
        desired("new-hourly", start="2024-01-01", end="2024-01-31T23:00:00Z", interval_type="hour"),
        desired("new-started", variables={"region": "eu"}, state="started"),
        desired(
            "renamed",
            previous_names=["old-name"],
            end="2024-02-29",
            variables={"region": "us", "full": True},
            description="Q1 reload, renamed",
        ),
        desired("to-start", state="started"),
        desired("to-cancel", state="cancelled"),
        desired("to-restart", state="started"),
        desired("gone", state="absent"),
        desired("finished", state="cancelled"),
        desired("never-there", state="absent"),
        desired("widened", end="2024-02-02", state="started"),
        desired("narrowed", end="2024-01-29", state="started"),
        desired("retried", state="started", retry_failed_before="2024-06-01T12:00:00Z"),
        desired("twinned"),
    )
    sales = manifest(
        desired("restart-allowed", pipeline="sales_monthly", interval_type="month", state="started", id=40),
        pipeline="sales_monthly",
    )
    live_backfills = [
        live(10, "old-name", variables={"region": "eu"}, status="running"),
        live(11, "to-start"),
        live(
            12, "to-cancel", status="running", run_status_counts={"initial": 20, "running": 1, "completed": 9}
        ),
        live(13, "to-restart", status="cancelled"),
        live(14, "gone", status="running"),
        live(15, "finished", status="completed"),
        live(16, "hand-made | *stars*", status="failed"),
        live(40, "restart-allowed", pipeline="sales_monthly", interval_type="month", status="cancelled"),
        live(17, "widened", status="completed", run_status_counts={"completed": 31}),
        live(18, "narrowed", status="running", run_status_counts={"completed": 29, "running": 2}),
        live(19, "retried", status="failed", run_status_counts={"completed": 28, "failed": 3}),
        live(20, "twinned"),
        live(21, "twinned"),
    ]
    failed_before = "2024-05-31 08:00:00"
    runs = {
        17: january_runs(first_id=100),
        18: [
            *january_runs(first_id=200, days=29),
            run(230, "2024-01-30", "running"),
            run(231, "2024-01-31", "running"),
        ],
        19: [
            run(
                300 + day, f"2024-01-{day:02d}", "failed" if day in (3, 9, 10) else "completed", failed_before
            )
            for day in range(1, 32)
        ],
    }
    blocked = plan_of(etl, live_backfills=live_backfills, runs=runs)
    allowed = plan_of(sales, live_backfills=live_backfills, allow_restart=not one_allow_restart)
    counts = {b.id: RunCounts(31, b.run_status_counts) for b in live_backfills if b.run_status_counts}
    both = Plan(MAGE_URL, blocked.pipelines + allowed.pipelines, allow_restart=False)
    return with_progress(both, counts)
