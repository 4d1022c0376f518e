"""`backfill-sync status`: how far the managed backfills are, per date, judged on their runs."""

from __future__ import annotations

import sys

import click

from backfill_sync.cli.common import load_selected_manifests, use_color
from backfill_sync.cli.options import (
    DEFAULT_MAX_RUNS,
    format_option,
    mage_connection_options,
    pipeline_filter_options,
)
from backfill_sync.client import MageClient
from backfill_sync.models import MageConnection
from backfill_sync.render.status import render_status_json, render_status_markdown, render_status_text
from backfill_sync.status import Outcome, StatusReport, read_status

# --detailed-exitcode: what each outcome exits with.
OUTCOME_EXIT_CODES: dict[Outcome, int] = {"completed": 0, "running": 2, "not_applied": 2, "failed": 3}


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--all", "include_unmanaged", is_flag=True, help="Also the pipelines' backfills no manifest manages."
)
@format_option("json", "markdown", help="text for people, json for machines, markdown for a PR comment.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when every started backfill completed, 2 when some are not finished and no date failed "
    "(some still run, or some declared `state: started` are not applied: Mage lacks them or never "
    "started them), 3 when some dates failed or were cancelled one by one (running or not), 1 on error.",
)
@pipeline_filter_options
@mage_connection_options
def status(
    paths: tuple[str, ...],
    include_unmanaged: bool,
    output_format: str,
    detailed_exitcode: bool,
    pipelines: tuple[str, ...],
    excludes: tuple[str, ...],
    connection: MageConnection,
) -> int:
    """Show how far each managed backfill is: its dates, by the status of their latest run.

    PATHS are manifest files or folders (default: backfills/). For every backfill of the manifests that
    Mage has: its state, its window's dates counted by the status of each date's latest run (initial,
    running, completed, failed, cancelled), the failed dates and the dates cancelled one by one (named
    apart), when it started and, once completed, when it completed. Dates "finished" have a latest run
    that completed, failed or was cancelled.

    \b
    States, judged on the runs, not on Mage's own status (which says `failed` while runs still run,
    and stays `running` forever once one run was cancelled):
        running      some dates still run (or wait to start)
        completed    every date of the window completed
        failed       nothing runs any more and some dates failed
        incomplete   nothing runs or failed, yet some dates were cancelled one by one, have no run
                     or will never start
        cancelled    cancelled in Mage, or declared `state: cancelled` (a backfill that completed
                     before it was declared cancelled stays completed)
        not started  never started (and not declared `state: started`)
        not applied  declared `state: started`, but Mage lacks it or never started it:
                     an apply failed, was blocked or has not run yet

    \b
        backfill-sync status                            # one line per backfill
        backfill-sync status --format json              # every failed date (schemas/status.schema.json)
        backfill-sync status --format markdown          # a table for a PR comment or job summary
        backfill-sync status --detailed-exitcode        # 0 completed, 2 not finished, 3 dates failed

    Exit code: 0 when everything could be read, 1 on error; with --detailed-exitcode: 0 every started
    backfill completed; 2 not finished and no date failed (some still run, or some declared
    `state: started` are not applied); 3 some dates failed, were cancelled one by one (they were not
    reprocessed) or will never run. Backfills cancelled as a whole, in Mage or by `state: cancelled`,
    are not failures.
    """
    manifests = load_selected_manifests(
        paths, max_runs=DEFAULT_MAX_RUNS, includes=pipelines, excludes=excludes
    )
    with MageClient(connection) as client:
        report = read_status(client, manifests, mage_url=connection.url, include_unmanaged=include_unmanaged)
    click.echo(_render(report, output_format), nl=False)
    return OUTCOME_EXIT_CODES[report.outcome()] if detailed_exitcode else 0


def _render(report: StatusReport, output_format: str) -> str:
    if output_format == "json":
        return render_status_json(report)
    if output_format == "markdown":
        return render_status_markdown(report)
    return render_status_text(report, color=use_color(sys.stdout), bar=sys.stdout.isatty())
