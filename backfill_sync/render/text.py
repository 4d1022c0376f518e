"""The Terraform-like text plan, and the per-line helpers the Markdown diff reuses."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from backfill_sync.datetimes import format_iso
from backfill_sync.models import (
    Action,
    ActionKind,
    FieldChange,
    LiveBackfill,
    PipelinePlan,
    Plan,
    PlanItem,
    Schedule,
)
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
from backfill_sync.runs import Progress, counts_cover_window_only, date_ranges, verdict
from backfill_sync.safe_text import printable


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
    header = paint(f"Pipeline {printable(pipeline.pipeline_uuid)}", "bold")
    return header + "\n" + "\n\n".join(blocks)


def _item_text(item: PlanItem, paint: Paint) -> str:
    lines: list[str] = []
    if not item.actions:
        lines.append(paint(f"  {UNCHANGED_SYMBOL} {label(item)} unchanged", "dim"))
    for action in item.actions:
        lines.append(action_text(item, action, paint))
        if action.kind in ("create", "update"):
            lines.extend(_change_text(change, action.kind, paint) for change in item.changes)
    if item.progress is not None:
        lines.append(paint(f"      runs now: {describe_progress(item.progress)}", "dim"))
    lines.extend(
        paint(f"      {WARNING_SYMBOL} warning: {printable(warning)}", "yellow") for warning in item.warnings
    )
    lines.extend(paint(f"      note: {printable(note)}", "dim") for note in item.notes)
    return "\n".join(lines)


def action_text(item: PlanItem, action: Action, paint: Paint) -> str:
    if action.is_blocked:
        symbol = paint(BLOCKED_SYMBOL, "red")
        blocked = " " + paint(f"[blocked: {action.blocked}]", "red")
    else:
        symbol = paint(SYMBOLS[action.kind], KIND_STYLES[action.kind])
        blocked = ""
    if action.kind == "delete_twins":
        ids = ", ".join(map(str, action.ids))
        return f"  {symbol} delete twins of {label(item)}: ids {ids} (never started){blocked}"
    if action.kind in DATED_KINDS:
        dates = describe_action_dates(action, item.desired.schedule or _live_window(item))
        return f"  {symbol} {ACTION_WORDS[action.kind]} {label(item)}: {dates}{blocked}"
    effect = describe_runs(action)
    effect_text = f": {effect}" if effect else ""
    return f"  {symbol} {action.kind} {label(item)}{effect_text}{blocked}"


def _live_window(item: PlanItem) -> Schedule | None:
    return None if item.live is None else item.live.schedule()


def describe_action_dates(action: Action, window: Schedule | None = None) -> str:
    """A run, retry or cancel_runs in words: `3 failed dates (2024-01-03, 2024-01-09..2024-01-10),
    +3 runs`; dates that follow each other on the window's grid are shown as one range."""
    count = len(action.dates)
    noun = "date" if count == 1 else "dates"
    shown = describe_ranges(window, action.dates)
    if action.kind == "run":
        return f"{count} new {noun} ({shown}), {plus_runs(action.runs)}"
    if action.kind == "retry":
        return f"{count} failed {noun} ({shown}), {plus_runs(action.runs)}"
    return f"{count} {noun} no longer in the window ({shown}), stops {count} unfinished {runs_word(count)}"


def describe_ranges(window: Schedule | None, dates: Sequence[datetime]) -> str:
    """At most DATES_SHOWN ranges of consecutive dates, then how many dates more (the JSON has them all)."""
    ranges = date_ranges(window, dates)
    shown = ranges[:DATES_SHOWN]
    more = sum(1 for date in dates if date > shown[-1][1]) if shown else 0
    text = ", ".join(format_range(first, last) for first, last in shown)
    return text + (f" and {more} more {'date' if more == 1 else 'dates'}" if more > 0 else "")


def format_range(first: datetime, last: datetime) -> str:
    """`2024-03-21..2024-03-31`, or the one date."""
    return format_date(first) if first == last else f"{format_date(first)}..{format_date(last)}"


def describe_progress(progress: Progress) -> str:
    """`completed 28/31, 3 failed, 0 running`: where a started backfill's window stands.

    Mage's own counts (all a plan has where it did not read the runs) also count dates that have left
    the window; when they add up to more than the window, they are labelled as such, not set against it.
    """
    if counts_cover_window_only(progress.total, progress.counts):
        return ", ".join([f"completed {progress.count('completed')}/{progress.total}", *_counts(progress)])
    dated = sum(progress.counts.values())
    outside = dated - progress.total
    counts = ", ".join([f"{progress.count('completed')} completed", *_counts(progress)])
    return f"{dated} dates with runs, at least {outside} outside the window of {progress.total}: {counts}"


def _counts(progress: Progress) -> list[str]:
    parts = [
        f"{progress.count(status)} {status}" for status in ("failed", "cancelled") if progress.count(status)
    ]
    return parts + ([f"{progress.unfinished} running"] if progress.unfinished > 0 else [])


def _change_text(change: FieldChange, kind: ActionKind, paint: Paint) -> str:
    if kind == "create":
        line = paint("+", "green") + f" {change.field}: {format_value(change.after)}"
    else:
        values = f"{format_value(change.before)} -> {format_value(change.after)}"
        line = paint("~", "yellow") + f" {change.field}: {values}"
    details = "".join(f"\n          {printable(detail)}" for detail in change.details)
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


DATES_SHOWN = 5  # dates (or ranges of dates) a text line names before "and N more dates"
DATED_KINDS = frozenset({"run", "retry", "cancel_runs"})
ACTION_WORDS: dict[str, str] = {"run": "run", "retry": "retry", "cancel_runs": "cancel runs of"}


def format_date(value: datetime) -> str:
    """A run date as people write it: the day alone at midnight, else with the time."""
    text = format_iso(value).removesuffix("Z")
    return text.removesuffix("T00:00:00").replace("T", " ")


def format_value(value: Any) -> str:
    """A field value as JSON: strings quoted, objects inline; controls and invisible characters escaped
    (names and values come from Mage: they must not repaint a terminal or run a CI log command)."""
    return printable(json.dumps(value, ensure_ascii=False, default=str))


def label(item: PlanItem) -> str:
    """The name, with the live id and, once started, where it stands (judged on its runs when known)."""
    if item.live is None:
        return format_value(item.name)
    status = item.live.status
    if status is None:
        return f"{format_value(item.name)} (id {item.live.id})"
    state = verdict(status, item.progress) if item.progress is not None else status
    return f"{format_value(item.name)} (id {item.live.id}, {printable(state.replace('_', ' '))})"


def describe_unmanaged(backfill: LiveBackfill) -> str:
    status = "never started" if backfill.status is None else printable(backfill.status)
    return f"id {backfill.id} {format_value(backfill.name)} ({status})"


def has_anything(pipeline: PipelinePlan) -> bool:
    return bool(pipeline.unmanaged) or any(has_anything_item(item) for item in pipeline.items)


def has_anything_item(item: PlanItem) -> bool:
    return bool(item.actions or item.warnings or item.notes)
