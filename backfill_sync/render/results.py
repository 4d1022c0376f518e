"""Apply results as text lines, a summary line and versioned JSON."""

from __future__ import annotations

import json

from backfill_sync.models import ApplyResult, ItemResult, JsonObject, Outcome
from backfill_sync.render.summary import Paint, painter
from backfill_sync.safe_text import printable

APPLY_FORMAT_VERSION = 1
APPLY_OUTCOMES: tuple[Outcome, ...] = ("done", "unchanged", "failed", "stale", "blocked", "skipped")
_OUTCOME_STYLES: dict[Outcome, str] = {
    "done": "green",
    "unchanged": "dim",
    "failed": "red",
    "stale": "yellow",
    "blocked": "yellow",
    "skipped": "yellow",
}


def render_apply_text(result: ApplyResult, *, color: bool) -> str:
    """One line per backfill (what happened, in order), then a summary line."""
    paint = painter(color)
    lines = [_apply_line(item, paint) for item in result.items]
    return "\n".join(["", *lines, render_apply_summary(result)]) + "\n"


def render_apply_summary(result: ApplyResult) -> str:
    counts = ", ".join(f"{result.count(outcome)} {outcome}" for outcome in APPLY_OUTCOMES)
    if result.ok:
        return f"Apply complete: {counts}."
    advice = []
    if result.interrupted:
        advice.append(
            "items being written were finished, the others were not begun: run apply again to finish "
            "the job (done steps are not repeated)"
        )
    if result.count("failed") or (result.count("skipped") and not result.interrupted):
        advice.append("fix the cause and run apply again (done steps are not repeated)")
    if result.count("stale"):
        advice.append("Mage changed since the plan was made: run plan again and review it")
    if result.count("blocked"):
        advice.append("blocked items need the flag their message names")
    head = "Apply interrupted (Ctrl-C)" if result.interrupted else "Apply incomplete"
    return f"{head}: {counts}. " + "; ".join(advice).capitalize() + "."


def render_apply_json(result: ApplyResult) -> str:
    return json.dumps(apply_to_dict(result), indent=2) + "\n"


def apply_to_dict(result: ApplyResult) -> JsonObject:
    return {
        "format_version": APPLY_FORMAT_VERSION,
        "ok": result.ok,
        **({"interrupted": True} if result.interrupted else {}),
        "summary": {outcome: result.count(outcome) for outcome in APPLY_OUTCOMES},
        "items": [
            {
                "pipeline_uuid": item.pipeline_uuid,
                "name": item.name,
                "live_id": item.live_id,
                "outcome": item.outcome,
                "steps": list(item.steps),
                "message": item.message,
            }
            for item in result.items
        ],
    }


def _apply_line(item: ItemResult, paint: Paint) -> str:
    label = paint(f"{item.outcome:<9}", _OUTCOME_STYLES[item.outcome])
    ident = f" (id {item.live_id})" if item.live_id is not None else ""
    steps = f": {', '.join(item.steps)}" if item.steps else ""
    message = f" -- {item.message}" if item.message else ""
    return f"{label} " + printable(f"{item.pipeline_uuid}/{item.name}{ident}{steps}{message}")
