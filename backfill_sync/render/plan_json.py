"""The versioned plan JSON, which is also the saved-plan file format."""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

from backfill_sync.compare import desired_fields, live_fields
from backfill_sync.datetimes import format_iso
from backfill_sync.models import DesiredBackfill, JsonObject, LiveBackfill, PipelinePlan, Plan, PlanItem
from backfill_sync.render.summary import PlanSummary, summarize_plan

PLAN_FORMAT_VERSION = 1


def render_plan_json(plan: Plan) -> str:
    return json.dumps(plan_to_dict(plan), indent=2, ensure_ascii=False) + "\n"


def plan_to_dict(plan: Plan) -> JsonObject:
    """The versioned, self-contained JSON form of a plan (see schemas/plan.schema.json). No secrets."""
    summary = summarize_plan(plan.items())
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "mage_url": public_url(plan.mage_url),
        "allow_restart": plan.allow_restart,
        "summary": _summary_dict(summary),
        "pipelines": [_pipeline_dict(pipeline) for pipeline in plan.pipelines],
    }


def public_url(url: str) -> str:
    """The Mage URL without credentials, query or fragment, and without a trailing slash."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def _summary_dict(summary: PlanSummary) -> JsonObject:
    return {
        "has_changes": summary.has_changes,
        "create": summary.create,
        "update": summary.update,
        "start": summary.start,
        "cancel": summary.cancel,
        "restart": summary.restart,
        "delete": summary.delete,
        "blocked": summary.blocked,
        "start_runs": summary.start_runs,
        "restart_runs": summary.restart_runs,
        "stop_runs": summary.stop_runs,
    }


def _pipeline_dict(pipeline: PipelinePlan) -> JsonObject:
    return {
        "pipeline_uuid": pipeline.pipeline_uuid,
        "items": [_item_dict(item) for item in pipeline.items],
        "unmanaged": [_unmanaged_dict(backfill) for backfill in pipeline.unmanaged],
    }


def _item_dict(item: PlanItem) -> JsonObject:
    live = item.live
    return {
        "pipeline_uuid": item.pipeline_uuid,
        "name": item.name,
        "live_id": item.live_id,
        "live_status": None if live is None else live.status,
        "desired": desired_to_dict(item.desired),
        "before": None if live is None else live_fields(live),
        "after": None if item.desired.state == "absent" else desired_fields(item.desired),
        "changes": [
            {"field": c.field, "before": c.before, "after": c.after, "details": list(c.details)}
            for c in item.changes
        ],
        "actions": [{"kind": a.kind, "runs": a.runs, "blocked": a.blocked} for a in item.actions],
        "warnings": list(item.warnings),
        "notes": list(item.notes),
        "fingerprint": item.fingerprint,
    }


def desired_to_dict(desired: DesiredBackfill) -> JsonObject:
    schedule = desired.schedule
    source = desired.source
    return {
        "pipeline_uuid": desired.pipeline_uuid,
        "name": desired.name,
        "schedule": None
        if schedule is None
        else {
            "start_datetime": format_iso(schedule.start),
            "end_datetime": format_iso(schedule.end),
            "interval_type": schedule.interval_type,
            "interval_units": schedule.interval_units,
        },
        "variables": desired.variables,
        "settings": desired.settings,
        "state": desired.state,
        "id": desired.id,
        "previous_names": list(desired.previous_names),
        "description": desired.description,
        "source": None if source is None else {"file": source.file, "line": source.line, "col": source.col},
    }


def _unmanaged_dict(backfill: LiveBackfill) -> JsonObject:
    return {
        "id": backfill.id,
        "name": backfill.name,
        "status": backfill.status,
        "fields": live_fields(backfill),
    }
