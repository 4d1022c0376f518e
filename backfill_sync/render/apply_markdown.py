"""An apply result as Markdown for a CI job summary: the summary line, then a table, problems first."""

from __future__ import annotations

from backfill_sync.models import ApplyResult, ItemResult, Outcome, Plan, SourceLocation
from backfill_sync.render.markdown import escape_markdown
from backfill_sync.render.results import APPLY_OUTCOMES, render_apply_summary

HEADING = "### backfill-sync apply"
_MARKS: dict[Outcome, str] = {
    "failed": ":x:",
    "stale": ":x:",
    "blocked": ":warning:",
    "skipped": ":warning:",
    "done": ":white_check_mark:",
    "unchanged": ":heavy_minus_sign:",
}
# Problems first, so that a table cut to fit still shows what needs someone.
_ORDER: tuple[Outcome, ...] = ("failed", "stale", "blocked", "skipped", "done", "unchanged")
_TABLE_HEADER = "| result | backfill | id | manifest | steps | message |\n|---|---|---:|---|---|---|"


def render_apply_markdown(result: ApplyResult, plan: Plan, *, max_bytes: int | None = None) -> str:
    """The summary line and one table row per backfill apply touched; rows that do not fit in
    max_bytes (UTF-8) are left out from the end and counted instead."""
    assert set(_ORDER) == set(APPLY_OUTCOMES), "every outcome has its place in the table"
    head = f"{HEADING}\n\n**{escape_markdown(render_apply_summary(result))}**\n"
    if not result.items:
        return head
    sources = {(item.pipeline_uuid, item.name): item.desired.source for item in plan.items()}
    items = sorted(result.items, key=lambda item: _ORDER.index(item.outcome))
    rows = [_row(item, sources.get((item.pipeline_uuid, item.name))) for item in items]
    text = f"{head}\n{_TABLE_HEADER}\n"
    for shown, row in enumerate(rows):
        more = _more(len(rows) - shown - 1)
        if max_bytes is not None and len((text + row + more).encode("utf-8")) > max_bytes:
            return text + _more(len(rows) - shown)
        text += row
    return text


def _row(item: ItemResult, source: SourceLocation | None) -> str:
    cells = [
        f"{_MARKS[item.outcome]} {item.outcome}",
        escape_markdown(f"{item.pipeline_uuid}/{item.name}"),
        "" if item.live_id is None else str(item.live_id),
        "" if source is None else escape_markdown(str(source)),
        escape_markdown(", ".join(item.steps)),
        escape_markdown(" ".join((item.message or "").split())),
    ]
    return "| " + " | ".join(cells) + " |\n"


def _more(hidden: int) -> str:
    if not hidden:
        return ""
    return f"\n… {hidden} more backfill{'s' if hidden != 1 else ''} not shown here; see the job's log.\n"
