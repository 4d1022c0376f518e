"""The versioned plan JSON, which is also the saved-plan file format."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlsplit, urlunsplit

from backfill_sync.compare import desired_fields, live_fields
from backfill_sync.datetimes import format_iso
from backfill_sync.models import DesiredBackfill, JsonObject, LiveBackfill, PipelinePlan, Plan, PlanItem
from backfill_sync.render.summary import PlanSummary, summarize_plan
from backfill_sync.runs import Progress
from backfill_sync.safe_text import json_safe

PLAN_FORMAT_VERSION = 2


def render_plan_json(plan: Plan) -> str:
    return json_safe(json.dumps(plan_to_dict(plan), indent=2, ensure_ascii=False)) + "\n"


def plan_to_dict(plan: Plan) -> JsonObject:
    """The versioned, self-contained JSON form of a plan (see schemas/plan.schema.json). No secrets.

    It ends with a digest of everything before it, so that apply can refuse a file edited after plan
    wrote it (an accident or a naive edit; someone who recomputes the digest is not stopped by it).
    """
    document = _plan_document(plan)
    document["digest"] = plan_digest(document)
    return document


def plan_digest(document: JsonObject) -> str:
    """sha256 of the document's canonical JSON, its own `digest` key left out."""
    content = {key: value for key, value in document.items() if key != "digest"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _plan_document(plan: Plan) -> JsonObject:
    summary = summarize_plan(plan.items())
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "mage_url": public_url(plan.mage_url),
        "mage_time": None if plan.mage_time is None else format_iso(plan.mage_time),
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
        "restart": summary.restart,
        "retry": summary.retry,
        "run": summary.run,
        "cancel": summary.cancel,
        "delete": summary.delete,
        "blocked": summary.blocked,
        "start_runs": summary.start_runs,
        "restart_runs": summary.restart_runs,
        "retry_runs": summary.retry_runs,
        "new_date_runs": summary.new_date_runs,
        "set_off_runs": summary.set_off_runs,
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
        "actions": [
            {
                "kind": a.kind,
                "runs": a.runs,
                "blocked": a.blocked,
                "dates": [format_iso(d) for d in a.dates],
                "ids": list(a.ids),
            }
            for a in item.actions
        ],
        "progress": None if item.progress is None else _progress_dict(item.progress),
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
        "retry_failed_before": None
        if desired.retry_failed_before is None
        else format_iso(desired.retry_failed_before),
        "source": None if source is None else {"file": source.file, "line": source.line, "col": source.col},
    }


def _progress_dict(progress: Progress) -> JsonObject:
    """Mage's run counts when the plan was made (the latest run of each date, by status)."""
    return {"total": progress.total, "counts": dict(progress.counts)}


def _unmanaged_dict(backfill: LiveBackfill) -> JsonObject:
    return {
        "id": backfill.id,
        "name": backfill.name,
        "status": backfill.status,
        "fields": live_fields(backfill),
    }
