"""Rows → the JSON objects Mage answers with, keys in Mage's order."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from backfill_sync.emulator.runs import (
    build_dates,
    has_schedule,
    run_status_counts,
    run_variables,
    total_run_count,
)
from backfill_sync.emulator.state import BackfillRow, PipelineRow, RunRow, Store, TriggerRow, User
from backfill_sync.emulator.values import format_datetime, read_interval_type


def present_backfill(row: BackfillRow) -> dict[str, Any]:
    """`Backfill.to_dict()`: every column alphabetically, then `id` last (18 keys)."""
    return {
        "block_uuid": row.block_uuid,
        "completed_at": format_datetime(row.completed_at),
        "created_at": format_datetime(row.created_at),
        "end_datetime": format_datetime(row.end_datetime),
        "failed_at": format_datetime(row.failed_at),
        "interval_type": read_interval_type(row.interval_type),
        "interval_units": row.interval_units,
        "metrics": row.metrics,
        "name": row.name,
        "pipeline_schedule_id": row.pipeline_schedule_id,
        "pipeline_uuid": row.pipeline_uuid,
        "settings": row.settings,
        "start_datetime": format_datetime(row.start_datetime),
        "started_at": format_datetime(row.started_at),
        "status": row.status,
        "updated_at": format_datetime(row.updated_at),
        "variables": row.variables,
        "id": row.id,
    }


def present_backfill_with_runs(
    store: Store, row: BackfillRow, *, run_count: bool, preview: bool, limit: int, offset: int
) -> dict[str, Any]:
    """BackfillPresenter: run counts only when all four schedule fields are set; a preview slice of
    `[offset : offset + limit + 1]` (one more than asked, as Mage does)."""
    data = present_backfill(row)
    if (run_count or preview) and has_schedule(row):
        data["total_run_count"] = total_run_count(row)
        data["run_status_counts"] = run_status_counts(store, row)
        if preview:
            data["pipeline_run_dates"] = preview_slice(row, limit, offset)
    return data


def preview_slice(row: BackfillRow, limit: int, offset: int) -> list[dict[str, Any]]:
    # An entry needs the dates either side of it (interval end, previous start): build one more each way.
    start = max(offset, 0)
    size = max(limit + 1, 0)
    first = max(start - 1, 0)
    window = list(itertools.islice(build_dates(row), first, start + size + 1))
    return run_variables(window)[start - first :][:size]


def present_run_record(run: RunRow) -> dict[str, Any]:
    """`PipelineRun.to_dict()`: the 15 columns, as a create or an update answers them."""
    return {
        "backfill_id": run.backfill_id,
        "completed_at": format_datetime(run.completed_at),
        "created_at": format_datetime(run.created_at),
        "event_variables": None,
        "execution_date": format_datetime(run.execution_date),
        "executor_type": "local_python",
        "id": run.id,
        "metrics": None,
        "passed_sla": False,
        "pipeline_schedule_id": run.pipeline_schedule_id,
        "pipeline_uuid": run.pipeline_uuid,
        "started_at": format_datetime(run.started_at),
        "status": run.status,
        "updated_at": format_datetime(run.updated_at),
        "variables": run.variables,
    }


def present_run_detail(run: RunRow) -> dict[str, Any]:
    """The detail route: the 15 columns plus `block_runs` (mage-runs-api.md §4.8)."""
    return {**present_run_record(run), "block_runs": []}


def present_run_basic(run: RunRow) -> dict[str, Any]:
    """`_format=with_basic_details`: only the date, the id and the status, on lists and details."""
    return {"execution_date": format_datetime(run.execution_date), "id": run.id, "status": run.status}


def present_run(run: RunRow, trigger: TriggerRow | None) -> dict[str, Any]:
    """PipelineRunPresenter on a list, keys in the order real Mage 0.9.80 answered."""
    return {
        **present_run_record(run),
        "block_runs": [],
        "block_runs_count": 0,
        "completed_block_runs_count": 0,
        "pipeline_schedule_name": None if trigger is None else trigger.name,
        "pipeline_schedule_token": None if trigger is None else trigger.token,
        "pipeline_schedule_type": None,
        "pipeline_tags": None,
        "pipeline_type": None,
        "repo_path": None,
    }


def present_trigger(trigger: TriggerRow) -> dict[str, Any]:
    """A PipelineSchedule as its detail route answers it (a backfill's trigger, measured on 0.9.80)."""
    return {
        "created_at": format_datetime(trigger.created_at),
        "description": None,
        "global_data_product_uuid": None,
        "id": trigger.id,
        "last_enabled_at": format_datetime(trigger.last_enabled_at),
        "name": trigger.name,
        "pipeline_uuid": trigger.pipeline_uuid,
        "repo_path": None,
        "schedule_interval": "@once",
        "schedule_type": None,
        "settings": trigger.settings,
        "sla": None,
        "start_time": format_datetime(trigger.created_at),
        "status": trigger.status,
        "token": trigger.token,
        "updated_at": format_datetime(trigger.updated_at),
        "variables": trigger.variables,
        "event_matchers": [],
        "next_pipeline_run_date": None,
        "tags": [],
    }


def present_project(version: str, with_version: bool) -> dict[str, Any]:
    """`GET /api/projects`: a user token sees the version; an api key alone only the features."""
    features = {"add_new_block_v2": None, "command_center": None, "interactions": None}
    if not with_version:
        return {"features": features}
    return {
        "features": features,
        "help_improve_mage": False,
        "latest_version": version,
        "name": "emulator",
        "project_uuid": "00000000000000000000000000000000",
        "repo_path": "/emulator",
        "version": version,
    }


def present_pipeline(pipeline: PipelineRow) -> dict[str, Any]:
    return {
        "cache_block_output_in_memory": False,
        "concurrency_config": {},
        "created_at": f"{pipeline.created_at}+00:00",
        "data_integration": None,
        "description": None,
        "executor_config": {},
        "executor_count": 1,
        "executor_type": None,
        "name": pipeline.name,
        "notification_config": {},
        "retry_config": {},
        "run_pipeline_in_one_process": False,
        "settings": {"triggers": None},
        "tags": [],
        "type": pipeline.type,
        "uuid": pipeline.uuid,
        "blocks": list(pipeline.blocks),
        "callbacks": [],
        "conditionals": [],
        "widgets": [],
    }


# Role.create_default_roles makes these in this order on first start, so their ids are fixed; a user's
# project_access is its role's PermissionAccess bit (OWNER 1, ADMIN 2, EDITOR 4, VIEWER 8).
_ROLE_IDS = {"Owner": 1, "Admin": 2, "Editor": 3, "Viewer": 4}
_ROLE_ACCESS = {"Owner": 1, "Admin": 2, "Editor": 4, "Viewer": 8}


def present_user(user: User, roles_created_at: datetime) -> dict[str, Any]:
    """UserPresenter as a login answers it (measured against real Mage 0.9.80)."""
    role_time = format_datetime(roles_created_at)
    return {
        "avatar": None,
        "first_name": None,
        "id": user.id,
        "last_name": None,
        "owner": user.owner,
        "project_access": _ROLE_ACCESS[user.role],
        "roles": None,
        # roles_display reads the legacy `roles` bit field, which users made through POST /api/users with
        # roles_new leave null: only the owner shows a name.
        "roles_display": "Owner" if user.owner else None,
        "roles_new": [
            {
                "name": user.role,
                "user_id": None,
                "id": _ROLE_IDS[user.role],
                "created_at": role_time,
                "updated_at": role_time,
            }
        ],
        "username": user.username,
    }
