"""`backfill-sync wait`: block until the started backfills are finished, then say how their dates ended."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import click

from backfill_sync.cli.common import load_selected_manifests, use_color
from backfill_sync.cli.options import (
    DEFAULT_MAX_RUNS,
    format_option,
    mage_connection_options,
    pipeline_filter_options,
)
from backfill_sync.cli.progress import WaitProgress
from backfill_sync.cli.report import annotate, append_step_summary, in_github_actions
from backfill_sync.client import MageClient
from backfill_sync.datetimes import format_iso
from backfill_sync.entry import EXIT_INTERRUPTED
from backfill_sync.models import JsonObject, MageConnection
from backfill_sync.render.status import (
    backfill_label,
    describe_dates,
    not_applied_label,
    render_status_markdown,
    render_status_text,
    status_to_dict,
)
from backfill_sync.safe_text import json_safe
from backfill_sync.status import BackfillStatus, Selection, StatusReport, find_backfills, report_of
from backfill_sync.waiting import Target, WaitResult, wait_for

DEFAULT_TIMEOUT = "2h"
NOTHING_STARTED = "Nothing to wait for: no backfill of these manifests has been started."
NOTHING_AFTER_APPLY = (
    "Nothing to wait for: this apply started no runs, and no backfill of the plan is still running."
)
WAITING_CHANGED_NOTHING = {
    False: "nothing in Mage was changed",
    True: "the apply's changes were made, the waiting changed nothing",
}
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


# Generic only from click 8.3 on; subscripting it would break the older releases pyproject admits.
class Duration(click.ParamType):  # type: ignore[type-arg]
    """`2h`, `90m`, `1h30m`, `45s` or plain seconds."""

    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip().lower()
        if text.isdigit():
            return float(text)
        found = _DURATION.fullmatch(text)
        if not text or found is None:
            self.fail(f"{value!r} is not a duration like 2h, 90m, 1h30m, 45s or 3600", param, ctx)
        hours, minutes, seconds = (int(part or 0) for part in found.groups())
        return float(hours * 3600 + minutes * 60 + seconds)


timeout_option = click.option(
    "--timeout",
    type=Duration(),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Give up waiting after this long (2h, 90m, 45s, or seconds), then exit 1; waiting itself never "
    "changes anything in Mage.",
)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@timeout_option
@click.option(
    "--all", "include_unmanaged", is_flag=True, help="Also wait for the pipelines' unmanaged backfills."
)
@format_option("json", "markdown", help="How to report the end result on stdout (progress goes to stderr).")
@pipeline_filter_options
@mage_connection_options
def wait(
    paths: tuple[str, ...],
    timeout: float,
    include_unmanaged: bool,
    output_format: str,
    pipelines: tuple[str, ...],
    excludes: tuple[str, ...],
    connection: MageConnection,
) -> int:
    """Wait until every started backfill of the manifests is finished, then report its dates.

    A backfill is finished when no date's latest run is initial or running (runs left `initial` under
    an inactive trigger never start: they are reported as stuck, not waited on). Mage's own status is
    not trusted for this: it says `failed` while runs still run and stays `running` forever after one
    run was cancelled. Progress goes to stderr: a bar per backfill on a terminal, otherwise one line per
    change, at most one a minute per backfill. Nothing in Mage is changed, and Ctrl-C just stops waiting.

    \b
        backfill-sync wait --timeout 2h                   # after `apply` on merge, in a read-only job
        backfill-sync apply --auto-approve --wait         # apply, then wait for what it started
        backfill-sync wait --format json > result.json    # every failed date (schemas/status.schema.json)

    \b
    Exit codes: 0 every date completed (or nothing was started: it says so); 1 some dates failed, were
    cancelled one by one or will never run, some entries declared `state: started` are not applied
    (Mage lacks them or never started them: said at once, without waiting), or the timeout passed (the
    message tells which, names the backfills and their failed and cancelled dates, and what to do
    next), or an error; 130 interrupted. Under GitHub Actions the final table goes to the job summary
    and each backfill with failed or cancelled dates gets an ::error annotation on its manifest entry.
    """
    manifests = load_selected_manifests(
        paths, max_runs=DEFAULT_MAX_RUNS, includes=pipelines, excludes=excludes
    )
    with MageClient(connection) as client:
        selection = find_backfills(
            client, manifests, mage_url=connection.url, include_unmanaged=include_unmanaged
        )
        if selection.not_applied:
            result = not_applied_result(client, selection, connection)
        else:
            targets = [Target(uuid, live, desired) for uuid, live, desired in selection.found]
            result = wait_with_progress(targets, client, connection, timeout)
        return report_wait(result, output_format, timeout, client.server_time())


def not_applied_result(client: MageClient, selection: Selection, connection: MageConnection) -> WaitResult:
    """Entries declared started that Mage lacks or never started will not run however long one waits:
    say so at once, with where the others stand."""
    report = report_of(client, selection, mage_url=connection.url)
    return WaitResult(kind="not_applied", report=report, waited=0.0)


def wait_with_progress(
    targets: Sequence[Target], client: MageClient, connection: MageConnection, timeout: float
) -> WaitResult:
    err = sys.stderr
    progress = WaitProgress(err, tty=err.isatty(), color=use_color(err))
    return wait_for(targets, client, mage_url=connection.url, timeout=timeout, on_update=progress.update)


def wait_document(result: WaitResult, timeout: float) -> JsonObject:
    """The wait's end result as the JSON of schemas/status.schema.json, with its `wait` key."""
    extra = {"result": result.kind, "waited_seconds": round(result.waited, 3), "timeout_seconds": timeout}
    return status_to_dict(result.report, wait=extra)


def report_wait(
    result: WaitResult,
    output_format: str,
    timeout: float,
    mage_now: datetime | None,
    *,
    echo_json: bool = True,
    after_apply: bool = False,
) -> int:
    """Print the end result on stdout, the verdict on stderr, the CI extras; return the exit code.
    With echo_json false, JSON is left to the caller (apply puts it inside its own document). After an
    apply that left nothing to wait for, there is no table: its own result said what it did."""
    report = result.report
    table = not (after_apply and result.kind == "nothing_to_wait_for")
    if output_format == "json":
        if echo_json:
            click.echo(json_safe(json.dumps(wait_document(result, timeout), indent=2, ensure_ascii=False)))
    elif output_format == "markdown":
        click.echo(render_status_markdown(report, title="backfill-sync wait"), nl=False)
    elif table:
        click.echo(render_status_text(report, color=use_color(sys.stdout)), nl=False)
    _annotate(report.backfills)
    if table:
        append_step_summary(
            lambda _: render_status_markdown(report, title="backfill-sync wait"), "wait result"
        )
    click.echo(verdict_message(result, timeout, mage_now, after_apply=after_apply), err=True)
    if result.kind in ("completed", "nothing_to_wait_for"):
        return 0
    return EXIT_INTERRUPTED if result.kind == "interrupted" else 1


def verdict_message(
    result: WaitResult, timeout: float, mage_now: datetime | None, *, after_apply: bool = False
) -> str:
    """What the wait found, and what to do; about what it waited for only (and, after an apply, what it
    saw had finished before without waiting for it)."""
    lines = _verdict_lines(result, timeout, mage_now, after_apply)
    lines += _not_waited_lines(result.not_waited, mage_now)
    return "\n".join(lines)


def _verdict_lines(
    result: WaitResult, timeout: float, mage_now: datetime | None, after_apply: bool
) -> list[str]:
    backfills = result.report.backfills
    failing = [b for b in backfills if b.has_dates_to_retry]
    others = [b for b in backfills if b.verdict == "incomplete" and not b.has_dates_to_retry]
    if result.kind == "completed":
        return ["Every date of the started backfills completed."]
    if result.kind == "nothing_to_wait_for":
        return [NOTHING_AFTER_APPLY if after_apply else NOTHING_STARTED]
    if result.kind == "interrupted":
        if after_apply:
            return [
                "Stopped waiting (Ctrl-C). The apply's changes were made; only the waiting stopped, and "
                "the runs go on. `backfill-sync wait` waits for them again."
            ]
        return ["Stopped waiting (Ctrl-C). Nothing in Mage was changed; the runs go on."]
    lines: list[str] = _not_applied_lines(result.report)
    if result.kind == "timed_out":
        running = [b for b in backfills if b.verdict == "running"]
        lines.append(
            f"Error: timed out after {_duration(timeout)} with {_count(running, 'backfill')} still running; "
            f"{WAITING_CHANGED_NOTHING[after_apply]}. Run `backfill-sync wait` again to keep waiting."
        )
    if failing:
        lines.append(f"Error: {_what_went_wrong(failing)} in {_count(failing, 'backfill')}:")
        lines += [f"  {backfill_label(b)}: {describe_dates(b, b.progress)}" for b in failing if b.progress]
        lines.append(_retry_hint(mage_now))
    if others:
        lines.append(f"Error: {_count(others, 'backfill')} will not complete on its own:")
        lines += [f"  {backfill_label(b)}: {_why_incomplete(b)}" for b in others]
    return lines


def _not_waited_lines(not_waited: Sequence[BackfillStatus], mage_now: datetime | None) -> list[str]:
    """Backfills apply --wait did not wait for, that had finished before it with dates that failed."""
    failing = [b for b in not_waited if b.has_dates_to_retry and b.progress is not None]
    if not failing:
        return []
    return [
        f"Warning: not waited for, finished before this apply: {_what_went_wrong(failing)} "
        f"(`backfill-sync wait` fails on them) in {_count(failing, 'backfill')}:",
        *(f"  {backfill_label(b)}: {describe_dates(b, b.progress)}" for b in failing if b.progress),
        _retry_hint(mage_now),
    ]


def _what_went_wrong(backfills: Sequence[BackfillStatus]) -> str:
    failed = any(b.failed_count for b in backfills)
    cancelled = any(b.cancelled_count for b in backfills)
    if failed and cancelled:
        return "dates failed or were cancelled (not reprocessed)"
    return "dates failed" if failed else "dates were cancelled (not reprocessed)"


def _retry_hint(mage_now: datetime | None) -> str:
    instant = format_iso((mage_now or datetime.now(UTC)).replace(microsecond=0))
    return (
        "Once the cause is fixed, retry exactly those dates: set "
        f"`retry_failed_before: '{instant}'` on their manifest entries, then plan and apply."
    )


def _not_applied_lines(report: StatusReport) -> list[str]:
    entries = report.not_applied
    if not entries:
        return []
    return [
        f"Error: {_count(entries, 'backfill')} declared `state: started` "
        f"{'is' if len(entries) == 1 else 'are'} not started in Mage (not applied):",
        *(f"  {not_applied_label(entry)}" for entry in entries),
        "Run `backfill-sync apply` on these manifests (in CI: see why the apply job failed or was "
        "blocked), then wait again; no run of them will come by waiting.",
    ]


def _why_incomplete(backfill: BackfillStatus) -> str:
    progress = backfill.progress
    if progress is None:
        return "no usable window"
    reasons = []
    if progress.stuck_dates:
        reasons.append(
            f"{len(progress.stuck_dates)} runs wait on an inactive trigger and will never start "
            "(activate the backfill's trigger in Mage)"
        )
    if progress.without_run:
        reasons.append(
            f"{progress.without_run} dates of its window have no run (`state: started` and apply runs them)"
        )
    return "; ".join(reasons) or "not every date completed"


def _annotate(backfills: Sequence[BackfillStatus]) -> None:
    if not in_github_actions():
        return
    for backfill in backfills:
        if not backfill.has_dates_to_retry or backfill.progress is None:
            continue
        source = None if backfill.desired is None else backfill.desired.source
        message = f"{backfill_label(backfill)}: {describe_dates(backfill, backfill.progress)}"
        click.echo(
            annotate("error", source.file if source else None, source.line if source else None, message),
            err=True,
        )


def _count(items: Sequence[object], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"
