"""Backfill statuses (what `status` and `wait` report) as text lines, versioned JSON and Markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from backfill_sync.datetimes import format_iso
from backfill_sync.models import JsonObject
from backfill_sync.render.markdown import escape_markdown
from backfill_sync.render.plan_json import public_url
from backfill_sync.render.summary import Paint, painter
from backfill_sync.render.text import format_range
from backfill_sync.runs import RUN_STATUSES, VERDICTS, Progress, date_ranges
from backfill_sync.safe_text import json_safe, printable
from backfill_sync.status import BackfillStatus, Missing, StatusReport

STATUS_FORMAT_VERSION = 2
STATUS_MARKER = "<!-- backfill-sync:status -->"
DATES_SHOWN = 5  # ranges of failed (or cancelled) dates a text line names before "and N more"
BAR_WIDTH = 20

SUMMARY_ORDER = (
    "completed",
    "running",
    "failed",
    "incomplete",
    "cancelled",
    "not_started",
    "not_applied",
)
_VERDICT_STYLES = {
    "completed": "green",
    "running": "cyan",
    "failed": "red",
    "incomplete": "yellow",
    "cancelled": "dim",
    "not_started": "dim",
    "not_applied": "red",
}
NO_BACKFILLS = "No backfill of these manifests exists in Mage yet."
NOT_APPLIED_WHY = {
    "missing": "declared `state: started`; Mage does not have it (run apply)",
    "never_started": "declared `state: started`; never started in Mage (run apply)",
}


# -- text ------------------------------------------------------------------------------------------


def render_status_text(report: StatusReport, *, color: bool, bar: bool = False) -> str:
    """One line per backfill (then one per started entry Mage lacks), then a summary line of fixed shape."""
    paint = painter(color)
    lines = [status_line(backfill, paint, bar=bar) for backfill in report.backfills]
    lines += [missing_line(missing, paint) for missing in report.missing]
    if not lines:
        lines = [NO_BACKFILLS]
    return "\n".join([*lines, "", render_status_summary(report)]) + "\n"


def status_line(backfill: BackfillStatus, paint: Paint, *, bar: bool = False) -> str:
    head = f"{_verdict_word(backfill.verdict, paint)} {backfill_label(backfill)}"
    if backfill.not_applied:
        return f"{head}  {NOT_APPLIED_WHY['never_started']}"
    progress = backfill.progress
    if progress is None:
        return head
    parts = [f"{progress.finished_dates}/{progress.total} dates finished"]
    if bar:
        parts.append(progress_bar(progress))
    dates = describe_dates(backfill, progress)
    parts.append(describe_counts(progress) + (f"; {dates}" if dates else ""))
    times = describe_times(backfill)
    return f"{head}  " + "  ".join([*parts, *([times] if times else [])])


def describe_times(backfill: BackfillStatus) -> str:
    """`started 2024-05-01T10:00:00Z, completed …`: when Mage started it and, if it is completed now,
    when it completed (Mage keeps an old completed_at while a restart runs, so only then)."""
    started, completed = backfill.live.started_at, backfill.live.completed_at
    parts = [] if started is None else [f"started {_when(started)}"]
    if completed is not None and backfill.verdict == "completed":
        parts.append(f"completed {_when(completed)}")
    return ", ".join(parts)


def _when(value: datetime) -> str:
    return format_iso(value.replace(microsecond=0))


def missing_line(missing: Missing, paint: Paint) -> str:
    return f"{_verdict_word('not_applied', paint)} {missing_label(missing)}  {NOT_APPLIED_WHY['missing']}"


def _verdict_word(verdict: str, paint: Paint) -> str:
    word = verdict.replace("_", " ")
    return paint(f"{word:<11}", _VERDICT_STYLES[verdict])


def backfill_label(backfill: BackfillStatus) -> str:
    name = printable(backfill.live.name) if backfill.live.name is not None else "(no name)"
    managed = "" if backfill.desired is not None else ", unmanaged"
    return f"{printable(backfill.pipeline_uuid)}/{name} (id {backfill.live.id}{managed})"


def missing_label(missing: Missing) -> str:
    return f"{printable(missing.pipeline_uuid)}/{printable(missing.desired.name)} (not in Mage)"


def not_applied_label(entry: BackfillStatus | Missing) -> str:
    """A started entry that is not applied, and why: `p/name (id 3): never started in Mage`."""
    if isinstance(entry, Missing):
        return f"{missing_label(entry)}: Mage does not have it"
    return f"{backfill_label(entry)}: never started in Mage"


def describe_counts(progress: Progress) -> str:
    """`25 completed, 3 failed, 2 running`: the statuses present, in lifecycle order."""
    parts = [f"{progress.count(status)} {status}" for status in RUN_STATUSES if progress.count(status)]
    if progress.without_run:
        parts.append(f"{progress.without_run} without a run")
    if progress.stuck_dates:
        parts.append(f"{len(progress.stuck_dates)} stuck (trigger inactive)")
    return ", ".join(parts) or "no runs"


def describe_dates(backfill: BackfillStatus, progress: Progress) -> str:
    """`failed dates: 2024-01-03, 2024-01-09..2024-01-11; cancelled dates: 2024-01-20`: the failed dates
    and the dates cancelled one by one (of a backfill not meant to be cancelled), each as ranges, the
    first few and how many more. Only dates known by name (a wait names them as counts move)."""
    parts = []
    if backfill.failed_count and progress.failed_dates:
        parts.append(f"failed dates: {_ranges_text(backfill, progress.failed_dates)}")
    if backfill.cancelled_count and progress.cancelled_dates:
        parts.append(f"cancelled dates: {_ranges_text(backfill, progress.cancelled_dates)}")
    return "; ".join(parts)


def _ranges_text(backfill: BackfillStatus, dates: Sequence[datetime]) -> str:
    ranges = date_ranges(backfill.live.schedule(), dates)
    shown = ", ".join(format_range(first, last) for first, last in ranges[:DATES_SHOWN])
    more = len(ranges) - DATES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def progress_bar(progress: Progress) -> str:
    filled = 0 if progress.total <= 0 else round(BAR_WIDTH * progress.finished_dates / progress.total)
    return "[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]"


def render_status_summary(report: StatusReport) -> str:
    """`Status: 3 backfills: 1 completed, 1 running, 1 failed, …; 3 failed dates, 0 cancelled dates.`
    always alike: every state, then the dates that failed and those cancelled one by one."""
    counts = verdict_counts(report)
    states = ", ".join(f"{counts[verdict]} {verdict.replace('_', ' ')}" for verdict in SUMMARY_ORDER)
    failed, cancelled = date_counts(report)
    total = len(report.backfills) + len(report.missing)
    return (
        f"Status: {total} backfill{'' if total == 1 else 's'}: {states}; "
        f"{_plural(failed, 'failed date')}, {_plural(cancelled, 'cancelled date')}."
    )


def date_counts(report: StatusReport) -> tuple[int, int]:
    """Failed dates, and dates cancelled one by one, of the backfills not meant to be cancelled."""
    failed = sum(backfill.failed_count for backfill in report.backfills)
    return failed, sum(backfill.cancelled_count for backfill in report.backfills)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def verdict_counts(report: StatusReport) -> dict[str, int]:
    counts = dict.fromkeys(VERDICTS, 0)
    for backfill in report.backfills:
        counts[backfill.verdict] += 1
    counts["not_applied"] += len(report.missing)
    return counts


# -- JSON ------------------------------------------------------------------------------------------


def render_status_json(report: StatusReport, **extra: object) -> str:
    return json_safe(json.dumps(status_to_dict(report, **extra), indent=2, ensure_ascii=False)) + "\n"


def status_to_dict(report: StatusReport, **extra: object) -> JsonObject:
    """The versioned JSON of schemas/status.schema.json; `extra` adds top-level keys (wait's result)."""
    return {
        "format_version": STATUS_FORMAT_VERSION,
        "mage_url": public_url(report.mage_url),
        "outcome": report.outcome(),
        **extra,
        "summary": _summary_dict(report),
        "backfills": [
            *(backfill_to_dict(backfill) for backfill in report.backfills),
            *(missing_to_dict(missing) for missing in report.missing),
        ],
    }


def _summary_dict(report: StatusReport) -> JsonObject:
    counts = verdict_counts(report)
    failed, cancelled = date_counts(report)
    return {
        "backfills": len(report.backfills) + len(report.missing),
        **counts,
        "failed_dates": failed,
        "cancelled_dates": cancelled,
    }


def backfill_to_dict(backfill: BackfillStatus) -> JsonObject:
    live, progress, desired = backfill.live, backfill.progress, backfill.desired
    source = None if desired is None or desired.source is None else desired.source
    return {
        "pipeline_uuid": backfill.pipeline_uuid,
        "name": live.name,
        "id": live.id,
        "managed": desired is not None,
        "declared_state": None if desired is None else desired.state,
        "mage_status": live.status,
        "state": backfill.verdict,
        "started_at": _iso(live.started_at),
        "completed_at": _iso(live.completed_at),
        "dates": None if progress is None else _dates_dict(progress),
        "failed_dates": [] if progress is None else _isos(progress.failed_dates),
        "cancelled_dates": [] if progress is None else _isos(progress.cancelled_dates),
        "stuck_dates": [] if progress is None else _isos(progress.stuck_dates),
        "source": None if source is None else {"file": source.file, "line": source.line, "col": source.col},
    }


def missing_to_dict(missing: Missing) -> JsonObject:
    """A started entry Mage does not have: no id, no status, no dates."""
    source = missing.desired.source
    return {
        "pipeline_uuid": missing.pipeline_uuid,
        "name": missing.desired.name,
        "id": None,
        "managed": True,
        "declared_state": missing.desired.state,
        "mage_status": None,
        "state": "not_applied",
        "started_at": None,
        "completed_at": None,
        "dates": None,
        "failed_dates": [],
        "cancelled_dates": [],
        "stuck_dates": [],
        "source": None if source is None else {"file": source.file, "line": source.line, "col": source.col},
    }


def _dates_dict(progress: Progress) -> JsonObject:
    return {
        "total": progress.total,
        **{status: progress.count(status) for status in RUN_STATUSES},
        "without_run": progress.without_run,
        "stuck": len(progress.stuck_dates),
        "finished": progress.finished_dates,
        "fraction_finished": 1.0
        if progress.total <= 0
        else round(progress.finished_dates / progress.total, 4),
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else format_iso(value)


def _isos(values: Sequence[datetime]) -> list[str]:
    return [format_iso(value) for value in values]


# -- Markdown --------------------------------------------------------------------------------------


def render_status_markdown(report: StatusReport, *, title: str = "backfill-sync status") -> str:
    """A table for a PR comment or a job summary, led by a hidden marker line."""
    rows = [
        "| backfill | state | dates finished | completed | failed | cancelled | running | started at "
        "| completed at | failed and cancelled dates |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---|",
    ]
    rows += [_markdown_row(backfill) for backfill in report.backfills]
    rows += [
        _table_row([escape_markdown(missing_label(m)), "not applied", *[""] * 8]) for m in report.missing
    ]
    head = [STATUS_MARKER, f"### {title}", "", f"**{render_status_summary(report)}**", ""]
    return "\n".join([*head, *rows]) + "\n"


def _markdown_row(backfill: BackfillStatus) -> str:
    progress = backfill.progress
    started, completed = backfill.live.started_at, backfill.live.completed_at
    counts = (
        [""] * 5
        if progress is None
        else [
            f"{progress.finished_dates}/{progress.total}",
            str(progress.count("completed")),
            str(progress.count("failed")),
            str(progress.count("cancelled")),
            str(progress.unfinished),
        ]
    )
    return _table_row(
        [
            escape_markdown(backfill_label(backfill)),
            backfill.verdict.replace("_", " "),
            *counts,
            "" if started is None else _when(started),
            "" if completed is None or backfill.verdict != "completed" else _when(completed),
            "" if progress is None else escape_markdown(describe_dates(backfill, progress)),
        ]
    )


def _table_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"
