"""The Markdown PR comment: marker, summary table, collapsed diffs, cut to fit GitHub's size limits."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from backfill_sync.models import ActionKind, FieldChange, PipelinePlan, Plan, PlanItem
from backfill_sync.render.summary import (
    UNCHANGED_SYMBOL,
    WARNING_SYMBOL,
    format_count,
    painter,
    render_summary_line,
    summarize_plan,
)
from backfill_sync.render.text import (
    action_text,
    describe_progress,
    describe_unmanaged,
    format_value,
    has_anything,
    has_anything_item,
    label,
)
from backfill_sync.safe_text import printable

MARKDOWN_MARKER = "<!-- backfill-sync:plan -->"
GITHUB_COMMENT_LIMIT = 65536

_TABLE_HEADER = (
    "| pipeline | create | update | start | restart | retry | run new dates | cancel | delete | blocked "
    "| runs set off | runs stopped |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
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
    sections = [pipeline for pipeline in plan.pipelines if has_anything(pipeline)]
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
            table.append(f"| … {len(rows) - shown_rows} more |" + " |" * 11)
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
    """Every count in the same column whatever the plan holds, like the summary line."""
    summary = summarize_plan(pipeline.items)
    counts = (
        summary.create,
        summary.update,
        summary.start,
        summary.restart,
        summary.retry,
        summary.run,
        summary.cancel,
        summary.delete,
        summary.blocked,
    )
    effects = (f"+{format_count(summary.set_off_runs)}", format_count(summary.stop_runs))
    cells = [escape_markdown(pipeline.pipeline_uuid), *map(str, counts), *effects]
    return "| " + " | ".join(cells) + " |"


def _pipeline_section(pipeline: PipelinePlan, shown_items: int | None = None) -> str:
    line = render_summary_line(summarize_plan(pipeline.items)).removeprefix("Plan: ")
    title = f"<code>{html.escape(pipeline.pipeline_uuid)}</code>: {html.escape(line)}"
    body = "\n".join(_diff_lines(pipeline, shown_items))
    fence = _fence_for(body)
    return f"<details><summary>{title}</summary>\n\n{fence}diff\n{body}\n{fence}\n\n</details>"


def _item_groups(pipeline: PipelinePlan) -> list[list[str]]:
    return [_item_diff(item) for item in pipeline.items if has_anything_item(item)]


def _diff_lines(pipeline: PipelinePlan, shown_items: int | None = None) -> list[str]:
    groups = _item_groups(pipeline)
    lines = [line for group in groups[:shown_items] for line in group]
    if shown_items is not None and shown_items < len(groups):
        hidden = len(groups) - shown_items
        lines.append(f"… {hidden} more backfill{'s' if hidden != 1 else ''} of this pipeline not shown;")
        lines.append("  run `backfill-sync plan` to see the full plan")
    elif pipeline.unmanaged:
        lines.append("  unmanaged, left alone:")
        lines.extend(f"    {describe_unmanaged(backfill)}" for backfill in pipeline.unmanaged)
    return lines


def _item_diff(item: PlanItem) -> list[str]:
    no_style = painter(False)
    lines: list[str] = []
    if not item.actions:
        lines.append(f"{UNCHANGED_SYMBOL} {label(item)} unchanged")
    for action in item.actions:
        lines.append(action_text(item, action, no_style).removeprefix("  "))
        if action.kind in ("create", "update"):
            lines.extend(_change_diff(change, action.kind) for change in item.changes)
    if item.progress is not None:
        lines.append(f"      runs now: {describe_progress(item.progress)}")
    lines.extend(f"{WARNING_SYMBOL}     warning: {printable(warning)}" for warning in item.warnings)
    lines.extend(f"      note: {printable(note)}" for note in item.notes)
    return lines


def _change_diff(change: FieldChange, kind: ActionKind) -> str:
    added = f"+     {change.field}: {format_value(change.after)}"
    if kind == "create":
        return added
    removed = f"-     {change.field}: {format_value(change.before)}"
    details = [f"          {printable(detail)}" for detail in change.details]
    return "\n".join([removed, added, *details])


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown's special characters, so names render as written; controls and
    invisible characters are shown as escapes (a newline would end a table row, or a log line)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", printable(text))


def _fence_for(body: str) -> str:
    # A fence must be longer than any backtick run inside, or a value could close the block early.
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    return "`" * max(3, longest + 1)
