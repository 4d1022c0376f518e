"""Plans as text (Terraform-like), JSON (also the saved-plan file) and Markdown (PR comments).

Everything here is built from the structured Plan, never by re-reading rendered lines; nothing prints.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from backfill_sync.compare import desired_fields, live_fields
from backfill_sync.datetimes import format_iso
from backfill_sync.models import (
    Action,
    ActionKind,
    ApplyResult,
    DesiredBackfill,
    FieldChange,
    ItemResult,
    JsonObject,
    LiveBackfill,
    Outcome,
    PipelinePlan,
    Plan,
    PlanItem,
)

PLAN_FORMAT_VERSION = 1
MARKDOWN_MARKER = "<!-- backfill-sync:plan -->"
GITHUB_COMMENT_LIMIT = 65536

# ASCII on purpose: CI logs and Windows consoles mangle anything fancier.
_SYMBOLS: dict[ActionKind, str] = {
    "create": "+",
    "update": "~",
    "start": ">",
    "cancel": "x",
    "restart": ">",
    "delete": "-",
}
BLOCKED_SYMBOL = "!"
WARNING_SYMBOL = "!"
UNCHANGED_SYMBOL = "="

_ANSI = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}
_KIND_STYLES: dict[ActionKind, str] = {
    "create": "green",
    "update": "yellow",
    "start": "cyan",
    "cancel": "red",
    "restart": "magenta",
    "delete": "red",
}

Paint = Callable[[str, str], str]


# ---------------------------------------------------------------------------------------------------------
# Summary


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """How many actions of each kind will be carried out (blocked ones apart), and their run effects."""

    create: int = 0
    update: int = 0
    start: int = 0
    cancel: int = 0
    restart: int = 0
    delete: int = 0
    blocked: int = 0
    start_runs: int | None = 0  # runs set off by starts; None when some count is unknown
    restart_runs: int | None = 0
    stop_runs: int | None = 0  # unfinished runs stopped by cancels and deletes

    @property
    def has_changes(self) -> bool:
        return any(
            (self.create, self.update, self.start, self.cancel, self.restart, self.delete, self.blocked)
        )


def summarize_plan(items: Sequence[PlanItem]) -> PlanSummary:
    actions = [action for item in items for action in item.actions]
    active = [action for action in actions if not action.is_blocked]

    def count(kind: ActionKind) -> int:
        return sum(1 for action in active if action.kind == kind)

    def runs(*kinds: ActionKind) -> int | None:
        return _sum_runs(action for action in active if action.kind in kinds)

    return PlanSummary(
        create=count("create"),
        update=count("update"),
        start=count("start"),
        cancel=count("cancel"),
        restart=count("restart"),
        delete=count("delete"),
        blocked=len(actions) - len(active),
        start_runs=runs("start"),
        restart_runs=runs("restart"),
        stop_runs=runs("cancel", "delete"),
    )


def render_summary_line(summary: PlanSummary) -> str:
    """`Plan: 1 to create, 2 to update, 1 to start (+744 runs), 0 to cancel`, or `No changes.`"""
    if not summary.has_changes:
        return "No changes."
    parts = [
        f"{summary.create} to create",
        f"{summary.update} to update",
        f"{summary.start} to start" + (f" ({_plus_runs(summary.start_runs)})" if summary.start else ""),
        f"{summary.cancel} to cancel",
    ]
    if summary.restart:
        parts.append(f"{summary.restart} to restart ({_plus_runs(summary.restart_runs)})")
    if summary.delete:
        parts.append(f"{summary.delete} to delete")
    if summary.blocked:
        parts.append(f"{summary.blocked} blocked")
    return "Plan: " + ", ".join(parts)


# ---------------------------------------------------------------------------------------------------------
# Text


def render_plan_text(plan: Plan, *, color: bool) -> str:
    """The Terraform-like plan: one section per pipeline with something to say, then the summary line."""
    paint = _painter(color)
    sections = [
        render_pipeline_text(pipeline, paint) for pipeline in plan.pipelines if _has_anything(pipeline)
    ]
    summary = paint(render_summary_line(summarize_plan(plan.items())), "bold")
    return "\n\n".join([*sections, summary]) + "\n"


def render_pipeline_text(pipeline: PipelinePlan, paint: Paint) -> str:
    blocks = [_item_text(item, paint) for item in pipeline.items if _has_anything_item(item)]
    if pipeline.unmanaged:
        blocks.append(_unmanaged_text(pipeline.unmanaged, paint))
    header = paint(f"Pipeline {pipeline.pipeline_uuid}", "bold")
    return header + "\n" + "\n\n".join(blocks)


def _item_text(item: PlanItem, paint: Paint) -> str:
    lines: list[str] = []
    if not item.actions:
        lines.append(paint(f"  {UNCHANGED_SYMBOL} {_label(item)} unchanged", "dim"))
    for action in item.actions:
        lines.append(_action_text(item, action, paint))
        if action.kind in ("create", "update"):
            lines.extend(_change_text(change, action.kind, paint) for change in item.changes)
    lines.extend(paint(f"      {WARNING_SYMBOL} warning: {warning}", "yellow") for warning in item.warnings)
    lines.extend(paint(f"      note: {note}", "dim") for note in item.notes)
    return "\n".join(lines)


def _action_text(item: PlanItem, action: Action, paint: Paint) -> str:
    if action.is_blocked:
        symbol = paint(BLOCKED_SYMBOL, "red")
        blocked = " " + paint(f"[blocked: {action.blocked}]", "red")
    else:
        symbol = paint(_SYMBOLS[action.kind], _KIND_STYLES[action.kind])
        blocked = ""
    effect = describe_runs(action)
    effect_text = f" ({effect})" if effect else ""
    return f"  {symbol} {action.kind} {_label(item)}{effect_text}{blocked}"


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
    lines.extend(f"    {_describe_unmanaged(backfill)}" for backfill in unmanaged)
    return paint("\n".join(lines), "dim")


def describe_runs(action: Action) -> str:
    """The run effect of one action, e.g. `+744 runs`, `stops 12 unfinished runs`; '' when none."""
    if action.kind in ("start", "restart"):
        return _plus_runs(action.runs)
    if action.kind == "cancel":
        if action.runs == 0:
            return "no unfinished runs"
        return f"stops {_count(action.runs)} unfinished {_runs_word(action.runs)}"
    if action.kind == "delete" and action.runs != 0:
        return f"stops {_count(action.runs)} unfinished {_runs_word(action.runs)} first"
    return ""


def format_value(value: Any) -> str:
    """A field value as JSON: strings quoted, objects inline."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _label(item: PlanItem) -> str:
    where = "" if item.live_id is None else f" (id {item.live_id})"
    return format_value(item.name) + where


def _describe_unmanaged(backfill: LiveBackfill) -> str:
    status = "never started" if backfill.status is None else backfill.status
    return f"id {backfill.id} {format_value(backfill.name)} ({status})"


def _has_anything(pipeline: PipelinePlan) -> bool:
    return bool(pipeline.unmanaged) or any(_has_anything_item(item) for item in pipeline.items)


def _has_anything_item(item: PlanItem) -> bool:
    return bool(item.actions or item.warnings or item.notes)


def _painter(color: bool) -> Paint:
    def paint(text: str, style: str) -> str:
        if not color:
            return text
        return f"\x1b[{_ANSI[style]}m{text}\x1b[0m"

    return paint


def _count(runs: int | None) -> str:
    return "?" if runs is None else str(runs)


def _plus_runs(runs: int | None) -> str:
    return f"+{_count(runs)} {_runs_word(runs)}"


def _runs_word(runs: int | None) -> str:
    return "run" if runs == 1 else "runs"


def _sum_runs(actions: Iterable[Action]) -> int | None:
    total = 0
    for action in actions:
        if action.runs is None:
            return None
        total += action.runs
    return total


# ---------------------------------------------------------------------------------------------------------
# JSON (the saved-plan format too)


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
        "schedule": {
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


# ---------------------------------------------------------------------------------------------------------
# Markdown (pull-request comments)

_TABLE_HEADER = (
    "| pipeline | create | update | start (runs) | cancel | restart | delete | blocked |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|"
)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~])")


def render_plan_markdown(
    plan: Plan, *, max_chars: int = GITHUB_COMMENT_LIMIT, max_bytes: int | None = None
) -> str:
    """A PR comment: marker line, summary, table, one collapsed section per pipeline; <= max_chars.

    When too long, whole sections are dropped from the end (then table rows) and the comment says so.
    max_bytes also bounds its UTF-8 size (GitHub's step summary limit counts bytes, not characters).
    """
    summary = summarize_plan(plan.items())
    changed = [pipeline for pipeline in plan.pipelines if summarize_plan(pipeline.items).has_changes]
    rows = [_table_row(pipeline) for pipeline in changed]
    sections = [pipeline for pipeline in plan.pipelines if _has_anything(pipeline)]
    head = [MARKDOWN_MARKER, "### backfill-sync plan", "", f"**{render_summary_line(summary)}**"]
    quiet = len(plan.pipelines) - len(changed)
    tail = (
        [f"{quiet} other pipeline{'s' if quiet != 1 else ''} without changes."] if changed and quiet else []
    )

    def fits(text: str) -> bool:
        return len(text) <= max_chars and (max_bytes is None or len(text.encode("utf-8")) <= max_bytes)

    return _fit_markdown(head, rows, tail, sections, fits)


def _fit_markdown(
    head: list[str],
    rows: list[str],
    tail: list[str],
    sections: list[PipelinePlan],
    fits_limit: Callable[[str], bool],
) -> str:
    """Drop details from the end, then table rows, until the comment fits.

    Whole sections go first; the first section that does not fit is cut item by item, so that even a
    one-pipeline plan shows as many of its backfills as fit.
    """

    def build(shown_rows: int, shown_sections: int, partial: int = 0) -> str:
        return _assemble_markdown(head, rows, shown_rows, tail, sections, shown_sections, partial)

    # Length grows with what is shown, so a binary search finds the most that fits without rebuilding a
    # huge comment once per section.
    shown = _most_that_fits(len(sections), lambda n: fits_limit(build(len(rows), n)))
    if shown is None:
        shown_rows = _most_that_fits(len(rows), lambda n: fits_limit(build(n, 0)))
        return build(shown_rows or 0, 0)
    if shown < len(sections):
        items = len(_item_groups(sections[shown]))
        partial = _most_that_fits(items, lambda k: fits_limit(build(len(rows), shown, k)))
        return build(len(rows), shown, partial or 0)
    return build(len(rows), shown)


def _most_that_fits(total: int, fits: Callable[[int], bool]) -> int | None:
    """The largest n in 0..total with fits(n), for a monotonic `fits`; None when not even 0 fits."""
    if not fits(0):
        return None
    low, high = 0, total
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _assemble_markdown(
    head: list[str],
    rows: list[str],
    shown_rows: int,
    tail: list[str],
    sections: list[PipelinePlan],
    shown_sections: int,
    partial_items: int,
) -> str:
    parts = ["\n".join(head)]
    if rows:
        table = [_TABLE_HEADER, *rows[:shown_rows]]
        if shown_rows < len(rows):
            table.append(f"| … {len(rows) - shown_rows} more | | | | | | | |")
        parts.append("\n".join(table))
    if tail:
        parts.append("\n".join(tail))
    parts.extend(_pipeline_section(pipeline) for pipeline in sections[:shown_sections])
    left_out = sections[shown_sections:]
    if left_out and partial_items:
        parts.append(_pipeline_section(left_out[0], shown_items=partial_items))
        left_out = left_out[1:]
    if left_out:
        noun = "pipeline" if len(left_out) == 1 else "pipelines"
        names = ", ".join(escape_markdown(pipeline.pipeline_uuid) for pipeline in left_out)
        parts.append(
            f"… {len(left_out)} {noun} not shown ({names}); run `backfill-sync plan` to see the full plan"
        )
    return "\n\n".join(parts) + "\n"


def _table_row(pipeline: PipelinePlan) -> str:
    summary = summarize_plan(pipeline.items)
    start = f"{summary.start} (+{_count(summary.start_runs)})" if summary.start else "0"
    restart = f"{summary.restart} (+{_count(summary.restart_runs)})" if summary.restart else "0"
    cells = [
        escape_markdown(pipeline.pipeline_uuid),
        str(summary.create),
        str(summary.update),
        start,
        str(summary.cancel),
        restart,
        str(summary.delete),
        str(summary.blocked),
    ]
    return "| " + " | ".join(cells) + " |"


def _pipeline_section(pipeline: PipelinePlan, shown_items: int | None = None) -> str:
    line = render_summary_line(summarize_plan(pipeline.items)).removeprefix("Plan: ")
    title = f"<code>{html.escape(pipeline.pipeline_uuid)}</code>: {html.escape(line)}"
    body = "\n".join(_diff_lines(pipeline, shown_items))
    fence = _fence_for(body)
    return f"<details><summary>{title}</summary>\n\n{fence}diff\n{body}\n{fence}\n\n</details>"


def _item_groups(pipeline: PipelinePlan) -> list[list[str]]:
    return [_item_diff(item) for item in pipeline.items if _has_anything_item(item)]


def _diff_lines(pipeline: PipelinePlan, shown_items: int | None = None) -> list[str]:
    groups = _item_groups(pipeline)
    lines = [line for group in groups[:shown_items] for line in group]
    if shown_items is not None and shown_items < len(groups):
        hidden = len(groups) - shown_items
        lines.append(f"… {hidden} more backfill{'s' if hidden != 1 else ''} of this pipeline not shown;")
        lines.append("  run `backfill-sync plan` to see the full plan")
    elif pipeline.unmanaged:
        lines.append("  unmanaged, left alone:")
        lines.extend(f"    {_describe_unmanaged(backfill)}" for backfill in pipeline.unmanaged)
    return lines


def _item_diff(item: PlanItem) -> list[str]:
    no_style = _painter(False)
    lines: list[str] = []
    if not item.actions:
        lines.append(f"{UNCHANGED_SYMBOL} {_label(item)} unchanged")
    for action in item.actions:
        lines.append(_action_text(item, action, no_style).removeprefix("  "))
        if action.kind in ("create", "update"):
            lines.extend(_change_diff(change, action.kind) for change in item.changes)
    lines.extend(f"{WARNING_SYMBOL}     warning: {warning}" for warning in item.warnings)
    lines.extend(f"      note: {note}" for note in item.notes)
    return lines


def _change_diff(change: FieldChange, kind: ActionKind) -> str:
    added = f"+     {change.field}: {format_value(change.after)}"
    if kind == "create":
        return added
    removed = f"-     {change.field}: {format_value(change.before)}"
    details = [f"          {detail}" for detail in change.details]
    return "\n".join([removed, added, *details])


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown's special characters, so names render as written."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _fence_for(body: str) -> str:
    # A fence must be longer than any backtick run inside, or a value could close the block early.
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    return "`" * max(3, longest + 1)


# ---------------------------------------------------------------------------------------------------------
# Apply results

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
    paint = _painter(color)
    lines = [_apply_line(item, paint) for item in result.items]
    return "\n".join(["", *lines, render_apply_summary(result)]) + "\n"


def render_apply_summary(result: ApplyResult) -> str:
    counts = ", ".join(f"{result.count(outcome)} {outcome}" for outcome in APPLY_OUTCOMES)
    if result.ok:
        return f"Apply complete: {counts}."
    advice = []
    if result.count("failed") or result.count("skipped"):
        advice.append("fix the cause and run apply again (done steps are not repeated)")
    if result.count("stale"):
        advice.append("Mage changed since the plan was made: run plan again and review it")
    if result.count("blocked"):
        advice.append("blocked items need the flag their message names")
    return f"Apply incomplete: {counts}. " + "; ".join(advice).capitalize() + "."


def render_apply_json(result: ApplyResult) -> str:
    return json.dumps(apply_to_dict(result), indent=2) + "\n"


def apply_to_dict(result: ApplyResult) -> JsonObject:
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "ok": result.ok,
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
    return f"{label} {item.pipeline_uuid}/{item.name}{ident}{steps}{message}"
