"""The Terraform-like text plan, and the per-line helpers the Markdown diff reuses."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from backfill_sync.models import Action, ActionKind, FieldChange, LiveBackfill, PipelinePlan, Plan, PlanItem
from backfill_sync.render.summary import (
    BLOCKED_SYMBOL,
    KIND_STYLES,
    SYMBOLS,
    UNCHANGED_SYMBOL,
    WARNING_SYMBOL,
    Paint,
    format_count,
    painter,
    plus_runs,
    render_summary_line,
    runs_word,
    summarize_plan,
)


def render_plan_text(plan: Plan, *, color: bool) -> str:
    """The Terraform-like plan: one section per pipeline with something to say, then the summary line."""
    paint = painter(color)
    sections = [
        render_pipeline_text(pipeline, paint) for pipeline in plan.pipelines if has_anything(pipeline)
    ]
    summary = paint(render_summary_line(summarize_plan(plan.items())), "bold")
    return "\n\n".join([*sections, summary]) + "\n"


def render_pipeline_text(pipeline: PipelinePlan, paint: Paint) -> str:
    blocks = [_item_text(item, paint) for item in pipeline.items if has_anything_item(item)]
    if pipeline.unmanaged:
        blocks.append(_unmanaged_text(pipeline.unmanaged, paint))
    header = paint(f"Pipeline {pipeline.pipeline_uuid}", "bold")
    return header + "\n" + "\n\n".join(blocks)


def _item_text(item: PlanItem, paint: Paint) -> str:
    lines: list[str] = []
    if not item.actions:
        lines.append(paint(f"  {UNCHANGED_SYMBOL} {label(item)} unchanged", "dim"))
    for action in item.actions:
        lines.append(action_text(item, action, paint))
        if action.kind in ("create", "update"):
            lines.extend(_change_text(change, action.kind, paint) for change in item.changes)
    lines.extend(paint(f"      {WARNING_SYMBOL} warning: {warning}", "yellow") for warning in item.warnings)
    lines.extend(paint(f"      note: {note}", "dim") for note in item.notes)
    return "\n".join(lines)


def action_text(item: PlanItem, action: Action, paint: Paint) -> str:
    if action.is_blocked:
        symbol = paint(BLOCKED_SYMBOL, "red")
        blocked = " " + paint(f"[blocked: {action.blocked}]", "red")
    else:
        symbol = paint(SYMBOLS[action.kind], KIND_STYLES[action.kind])
        blocked = ""
    effect = describe_runs(action)
    effect_text = f" ({effect})" if effect else ""
    return f"  {symbol} {action.kind} {label(item)}{effect_text}{blocked}"


def _change_text(change: FieldChange, kind: ActionKind, paint: Paint) -> str:
    if kind == "create":
        line = paint("+", "green") + f" {change.field}: {format_value(change.after)}"
    else:
        values = f"{format_value(change.before)} -> {format_value(change.after)}"
        line = paint("~", "yellow") + f" {change.field}: {values}"
    details = "".join(f"\n          {detail}" for detail in change.details)
    return f"      {line}{details}"


def _unmanaged_text(unmanaged: Sequence[LiveBackfill], paint: Paint) -> str:
    lines = ["  Unmanaged, left alone:"]
    lines.extend(f"    {describe_unmanaged(backfill)}" for backfill in unmanaged)
    return paint("\n".join(lines), "dim")


def describe_runs(action: Action) -> str:
    """The run effect of one action, e.g. `+744 runs`, `stops 12 unfinished runs`; '' when none."""
    if action.kind in ("start", "restart"):
        return plus_runs(action.runs)
    if action.kind == "cancel":
        if action.runs == 0:
            return "no unfinished runs"
        return f"stops {format_count(action.runs)} unfinished {runs_word(action.runs)}"
    if action.kind == "delete" and action.runs != 0:
        return f"stops {format_count(action.runs)} unfinished {runs_word(action.runs)} first"
    return ""


def format_value(value: Any) -> str:
    """A field value as JSON: strings quoted, objects inline."""
    return json.dumps(value, ensure_ascii=False, default=str)


def label(item: PlanItem) -> str:
    where = "" if item.live_id is None else f" (id {item.live_id})"
    return format_value(item.name) + where


def describe_unmanaged(backfill: LiveBackfill) -> str:
    status = "never started" if backfill.status is None else backfill.status
    return f"id {backfill.id} {format_value(backfill.name)} ({status})"


def has_anything(pipeline: PipelinePlan) -> bool:
    return bool(pipeline.unmanaged) or any(has_anything_item(item) for item in pipeline.items)


def has_anything_item(item: PlanItem) -> bool:
    return bool(item.actions or item.warnings or item.notes)
