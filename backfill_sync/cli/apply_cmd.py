"""`backfill-sync apply`: carry out a plan (made now from manifests, or saved by `plan --out`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from backfill_sync.apply import (
    DEFAULT_PARALLELISM,
    Snapshot,
    apply_plan,
    check_run_budget,
    seen_by,
    wait_targets,
)
from backfill_sync.cli.ci import CiReport, codequality_option
from backfill_sync.cli.common import build_plan, load_selected_manifests, read_saved_plan, use_color
from backfill_sync.cli.options import (
    format_option,
    mage_connection_options,
    max_runs_option,
    max_total_runs_option,
    pipeline_filter_options,
)
from backfill_sync.cli.report import append_step_summary
from backfill_sync.cli.wait_cmd import report_wait, timeout_option, wait_document, wait_with_progress
from backfill_sync.client import MageClient
from backfill_sync.entry import EXIT_INTERRUPTED
from backfill_sync.errors import StalePlanError, UsageError
from backfill_sync.models import ApplyResult, ItemResult, MageConnection, Plan
from backfill_sync.problems import apply_problems, run_budget_problems
from backfill_sync.render import public_url, render_apply_json, render_apply_text, render_plan_text
from backfill_sync.render.apply_markdown import render_apply_markdown
from backfill_sync.render.results import apply_to_dict


@click.command()
@click.argument("targets", nargs=-1, type=click.Path())
@click.option("--auto-approve", is_flag=True, help="Apply without asking (for CI).")
@click.option("--allow-restart", is_flag=True, help="Restart cancelled backfills wanted started.")
@max_total_runs_option
@click.option(
    "--parallelism",
    type=click.IntRange(min=1, max=32),
    default=DEFAULT_PARALLELISM,
    show_default=True,
    help="Most backfills applied (and requests sent) at the same time. Fewer are sent while Mage answers "
    "slower for more: it starts at 2, rises while answers come as fast as the fastest, falls when they "
    "queue (a Mage that serves one request at a time, as Mage 0.9.80 does, gets about 2). Keep the "
    "default; lower it to spare a Mage others use heavily, 1 for one request at a time.",
)
@click.option(
    "--wait",
    "wait_after",
    is_flag=True,
    help="Then wait until what this apply started, restarted, retried or ran new dates of (and anything "
    "of the plan still running) is finished; exit 1 if any of those dates failed or --timeout passed.",
)
@timeout_option
@format_option("json", help="How to report what was done (json: one object per backfill, on stdout).")
@codequality_option
@max_runs_option
@pipeline_filter_options
@mage_connection_options
def apply(
    targets: tuple[str, ...],
    auto_approve: bool,
    allow_restart: bool,
    max_total_runs: int,
    parallelism: int,
    wait_after: bool,
    timeout: float,
    output_format: str,
    codequality: str | None,
    max_runs: int,
    pipelines: tuple[str, ...],
    excludes: tuple[str, ...],
    connection: MageConnection,
) -> int:
    """Make Mage match the manifests, or carry out a plan saved with `plan --out FILE`.

    TARGETS are manifest files or folders (default: backfills/), or one saved plan (a .json file).
    The plan is shown first and, on a terminal, confirmed (without a terminal, apply refuses unless
    --auto-approve is given). Each backfill's steps run in order and
    in separate requests: create, field update, then one status change (start, cancel, restart or
    delete). Before writing, each backfill is read again; one that changed since the plan was made
    is refused as stale. A failed item does not stop the others; run apply again to finish the job.
    Ctrl-C lets the backfills being written finish, skips the others, says which, and exits 130.

    \b
        backfill-sync apply backfills/                       # plan, confirm, apply
        backfill-sync apply --auto-approve backfills/        # CI on merge
        backfill-sync plan --out plan.json && backfill-sync apply --auto-approve plan.json
        backfill-sync apply --auto-approve --wait --timeout 2h   # and see the dates through

    With --wait it then waits as `backfill-sync wait` does, for the backfills it started, restarted or
    retried or ran new dates of, and for any other started backfill of the plan still running; the exit
    code is 0 only when apply succeeded and every one of those dates completed. When there is nothing to
    wait for it says so; backfills of the plan that had finished before, with failed or cancelled
    dates, are named as a warning (`backfill-sync wait` fails on them), not waited for.

    --pipeline/--exclude select manifests; a saved plan is applied whole (filter when making it).

    Under GitHub Actions (GITHUB_ACTIONS=true) every item that failed or was refused as stale gets an
    ::error annotation on its manifest entry's line, a blocked one a ::warning, and the result is
    appended to the job summary as a table. --codequality FILE writes the same problems as a GitLab
    Code Quality report.
    """
    with CiReport(codequality) as ci_report, MageClient(connection, max_connections=parallelism) as client:
        the_plan = _plan_for(targets, client, connection, allow_restart, max_runs, pipelines, excludes)
        err = sys.stderr
        report = sys.stdout if output_format == "text" else err
        click.echo(render_plan_text(the_plan, color=use_color(report)), nl=False, file=report)
        result = ApplyResult()
        if the_plan.has_changes():
            ci_report.add(run_budget_problems(the_plan, max_total_runs))
            check_run_budget(the_plan, max_total_runs)
            asked = _confirm(auto_approve)
            # A plan made a moment ago is Mage as it is now; a saved one, or one pondered at the prompt,
            # is checked against a fresh listing.
            current = None if asked or _is_saved(targets) else seen_by(the_plan)
            result = _apply_with_progress(the_plan, client, parallelism, current)
            ci_report.add(apply_problems(the_plan, result))
            append_step_summary(
                lambda budget: render_apply_markdown(result, the_plan, max_bytes=budget), "apply result"
            )
        applied = 0 if result.ok else 1
        if result.interrupted:
            _echo_result(result, output_format)
            return EXIT_INTERRUPTED
        if not wait_after:
            if the_plan.has_changes() or output_format == "json":
                _echo_result(result, output_format)
            return applied
        if output_format == "text" and the_plan.has_changes():
            _echo_result(result, output_format)
        waited = wait_with_progress(wait_targets(the_plan, result), client, connection, timeout)
        code = report_wait(
            waited, output_format, timeout, client.server_time(), echo_json=False, after_apply=True
        )
        if output_format == "json":
            document = {**apply_to_dict(result), "wait": wait_document(waited, timeout)}
            click.echo(json.dumps(document, indent=2))
    return applied or code


def _plan_for(
    targets: tuple[str, ...],
    client: MageClient,
    connection: MageConnection,
    allow_restart: bool,
    max_runs: int,
    pipelines: tuple[str, ...],
    excludes: tuple[str, ...],
) -> Plan:
    if _is_saved(targets):
        if pipelines or excludes:
            # A saved plan is carried out exactly as reviewed; filtering it would apply a different plan.
            raise UsageError(
                "--pipeline/--exclude select manifests, not parts of a saved plan; "
                "pass them to `plan --out` instead"
            )
        return _saved_plan(Path(targets[0]), connection, allow_restart)
    if any(target.endswith(".json") for target in targets):
        raise UsageError("a saved plan (.json) must be the only argument of apply")
    manifests = load_selected_manifests(targets, max_runs=max_runs, includes=pipelines, excludes=excludes)
    return build_plan(client, manifests, connection, allow_restart=allow_restart)


def _is_saved(targets: tuple[str, ...]) -> bool:
    return len(targets) == 1 and targets[0].endswith(".json")


def _saved_plan(path: Path, connection: MageConnection, allow_restart: bool) -> Plan:
    saved = read_saved_plan(path)
    if saved.mage_url != public_url(connection.url):
        raise StalePlanError(
            f"{path} was made for Mage at {saved.mage_url}, not {public_url(connection.url)}; "
            "nothing was applied"
        )
    if allow_restart and not saved.allow_restart:
        raise UsageError(f"{path} was planned without --allow-restart; make a new plan with it")
    return saved


def _confirm(auto_approve: bool) -> bool:
    """Whether someone was asked (and said yes)."""
    if auto_approve:
        return False
    if not sys.stdin.isatty():
        raise UsageError("no terminal to confirm on: pass --auto-approve to apply without asking")
    if not click.confirm("Apply these changes to Mage?", err=True):
        raise UsageError("apply cancelled; nothing was changed")
    return True


def _apply_with_progress(
    the_plan: Plan, client: MageClient, parallelism: int, current: Snapshot | None
) -> ApplyResult:
    err = sys.stderr
    count = sum(1 for item in the_plan.items() if item.has_changes())
    if not err.isatty():
        return apply_plan(the_plan, client, parallelism=parallelism, current=current)
    with click.progressbar(length=count, label="Applying", file=err) as bar:

        def advance(_: ItemResult) -> None:
            bar.update(1)

        return apply_plan(the_plan, client, parallelism=parallelism, on_item_done=advance, current=current)


def _echo_result(result: ApplyResult, output_format: str) -> None:
    if output_format == "json":
        click.echo(render_apply_json(result), nl=False)
    else:
        click.echo(render_apply_text(result, color=use_color(sys.stdout)), nl=False)
