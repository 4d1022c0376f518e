"""Saved plans (`plan --out FILE`): the plan JSON written out, and read back into a Plan for apply."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any, cast

from backfill_sync.apply_runs import DATED_KINDS
from backfill_sync.datetimes import parse_mage_datetime
from backfill_sync.errors import UsageError
from backfill_sync.models import (
    Action,
    DesiredBackfill,
    FieldChange,
    JsonObject,
    LiveBackfill,
    PipelinePlan,
    Plan,
    PlanItem,
    Schedule,
    SourceLocation,
)
from backfill_sync.plan import plan_item
from backfill_sync.render import PLAN_FORMAT_VERSION, render_plan_json
from backfill_sync.render.plan_json import plan_digest
from backfill_sync.runs import in_window, progress_from_counts

PLAN_SCHEMA_RESOURCE = "plan.schema.json"


def dump_plan(plan: Plan) -> str:
    return render_plan_json(plan)


def load_plan(text: str, source_name: str) -> Plan:
    """The Plan saved in `text`; UsageError naming `source_name` when it is not a plan this version reads,
    was edited after plan wrote it, or its parts disagree (what it shows is not what it would do)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source_name}: not a saved plan: invalid JSON ({exc})") from None
    check_plan_document(data, source_name)
    if data["digest"] != plan_digest(data):
        raise UsageError(
            f"{source_name}: the saved plan was changed after `plan` wrote it (its digest does not match); "
            "make a new plan. Nothing was applied."
        )
    plan = plan_from_dict(data)
    for item in plan.items():
        check_item_agrees(item, plan.allow_restart, source_name)
    return plan


def check_item_agrees(item: PlanItem, allow_restart: bool, source_name: str) -> None:
    """What a saved item shows (name, changes, actions) must be what its desired backfill and the live
    backfill it saw make: apply shows and carries out one and the same thing."""
    desired = item.desired
    fresh = plan_item(desired, item.live, allow_restart)
    problems = []
    if (item.name, item.pipeline_uuid) != (desired.name, desired.pipeline_uuid):
        problems.append("its name or pipeline differs from its desired backfill")
    if item.changes != fresh.changes:
        problems.append("its field changes are not what its desired backfill asks")
    if _plain(item.actions) != _plain(fresh.actions):
        problems.append("its actions are not what its desired backfill asks")
    problems += _dated_problems(item)
    if problems:
        raise UsageError(
            f"{source_name}: backfill {item.name!r} of pipeline {item.pipeline_uuid!r}: "
            + "; ".join(problems)
            + ". The file was altered; make a new plan. Nothing was applied."
        )


def _plain(actions: tuple[Action, ...]) -> list[tuple[str, str | None, int | None]]:
    """The actions that follow from desired and live alone. The runs a cancel or a delete stops depend
    on run counts the file does not keep, so only those of starts and restarts are compared."""
    return [
        (action.kind, action.blocked, action.runs if action.kind in ("start", "restart") else None)
        for action in actions
        if action.kind not in DATED_KINDS and action.kind != "delete_twins"
    ]


def _dated_problems(item: PlanItem) -> list[str]:
    window = item.desired.schedule
    problems = []
    for action in item.actions:
        if action.kind == "delete_twins" and (
            not action.ids or item.live is None or item.live.id in action.ids
        ):
            problems.append("its twins to delete do not add up")
        if action.kind not in DATED_KINDS:
            continue
        if action.runs != len(action.dates) or window is None or item.live is None:
            problems.append(f"its {action.kind} does not add up")
            continue
        inside = [in_window(window, date) for date in action.dates]
        wrong = any(inside) if action.kind == "cancel_runs" else not all(inside)
        if wrong:
            problems.append(f"its {action.kind} names dates its window does not explain")
    return problems


def check_plan_document(data: Any, source_name: str) -> None:
    """Raise UsageError unless `data` is a plan document of the version this backfill-sync reads."""
    if not isinstance(data, dict) or "format_version" not in data:
        raise UsageError(f"{source_name}: not a saved backfill-sync plan (no format_version)")
    version = data["format_version"]
    if version != PLAN_FORMAT_VERSION:
        raise UsageError(
            f"{source_name}: saved plan format_version {version!r} is not supported "
            f"(this backfill-sync reads version {PLAN_FORMAT_VERSION}); make the plan again"
        )
    # jsonschema is imported here, by the commands that read a saved plan: plan itself only writes one,
    # and the import is a fifth of its start-up.
    import jsonschema
    from jsonschema.exceptions import best_match

    error = best_match(jsonschema.Draft202012Validator(plan_schema()).iter_errors(data))
    if error is not None:
        where = error.json_path.removeprefix("$").removeprefix(".") or "(top level)"
        raise UsageError(f"{source_name}: not a valid saved plan: {where}: {error.message}")


@cache
def plan_schema() -> JsonObject:
    text = (files("backfill_sync") / "schemas" / PLAN_SCHEMA_RESOURCE).read_text(encoding="utf-8")
    return cast(JsonObject, json.loads(text))


def plan_from_dict(data: JsonObject) -> Plan:
    """Rebuild a Plan from its (schema-valid) JSON form."""
    return Plan(
        mage_url=data["mage_url"],
        pipelines=tuple(_pipeline_from_dict(pipeline) for pipeline in data["pipelines"]),
        allow_restart=data["allow_restart"],
        mage_time=_optional_datetime(data["mage_time"]),
    )


def _pipeline_from_dict(data: JsonObject) -> PipelinePlan:
    pipeline_uuid = data["pipeline_uuid"]
    return PipelinePlan(
        pipeline_uuid=pipeline_uuid,
        items=tuple(_item_from_dict(item) for item in data["items"]),
        unmanaged=tuple(
            live_from_fields(entry["id"], pipeline_uuid, entry["status"], entry["fields"])
            for entry in data["unmanaged"]
        ),
    )


def _item_from_dict(data: JsonObject) -> PlanItem:
    live = None
    if data["live_id"] is not None and data["before"] is not None:
        live = live_from_fields(data["live_id"], data["pipeline_uuid"], data["live_status"], data["before"])
    return PlanItem(
        pipeline_uuid=data["pipeline_uuid"],
        name=data["name"],
        desired=desired_from_dict(data["desired"]),
        live=live,
        changes=tuple(
            FieldChange(c["field"], c["before"], c["after"], tuple(c["details"])) for c in data["changes"]
        ),
        actions=tuple(
            Action(
                a["kind"],
                a["runs"],
                a["blocked"],
                tuple(map(parse_mage_datetime, a["dates"])),
                tuple(a["ids"]),
            )
            for a in data["actions"]
        ),
        warnings=tuple(data["warnings"]),
        notes=tuple(data["notes"]),
        fingerprint=data["fingerprint"],
        progress=None
        if data["progress"] is None
        else progress_from_counts(data["progress"]["total"], data["progress"]["counts"]),
    )


def desired_from_dict(data: JsonObject) -> DesiredBackfill:
    schedule = data["schedule"]
    source = data["source"]
    return DesiredBackfill(
        pipeline_uuid=data["pipeline_uuid"],
        name=data["name"],
        schedule=None
        if schedule is None
        else Schedule(
            start=parse_mage_datetime(schedule["start_datetime"]),
            end=parse_mage_datetime(schedule["end_datetime"]),
            interval_type=schedule["interval_type"],
            interval_units=schedule["interval_units"],
        ),
        variables=data["variables"],
        settings=data["settings"],
        state=data["state"],
        id=data["id"],
        previous_names=tuple(data["previous_names"]),
        description=data["description"],
        retry_failed_before=_optional_datetime(data["retry_failed_before"]),
        source=None if source is None else SourceLocation(source["file"], source["line"], source["col"]),
    )


def live_from_fields(
    backfill_id: int, pipeline_uuid: str, status: str | None, fields: JsonObject
) -> LiveBackfill:
    """A LiveBackfill carrying what a plan saw: enough to fingerprint it again, nothing the server owns."""
    return LiveBackfill(
        id=backfill_id,
        pipeline_uuid=pipeline_uuid,
        name=fields["name"],
        start_datetime=_optional_datetime(fields["start_datetime"]),
        end_datetime=_optional_datetime(fields["end_datetime"]),
        interval_type=fields["interval_type"],
        interval_units=fields["interval_units"],
        variables=fields["variables"],
        settings=fields["settings"],
        status=status,
    )


def _optional_datetime(text: str | None) -> datetime | None:
    return None if text is None else parse_mage_datetime(text)
