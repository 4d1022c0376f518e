"""`backfill-sync plan`: show what apply would change in Mage, per backfill and per field."""

from __future__ import annotations

from pathlib import Path

import click

from backfill_sync.apply import planned_runs
from backfill_sync.cli import report
from backfill_sync.cli.ci import CiReport, codequality_option
from backfill_sync.cli.common import build_plan, load_selected_manifests, stdout_color
from backfill_sync.cli.options import (
    format_option,
    mage_connection_options,
    max_runs_option,
    max_total_runs_option,
    pipeline_filter_options,
)
from backfill_sync.cli.report import STEP_SUMMARY_LIMIT
from backfill_sync.client import MageClient
from backfill_sync.errors import BackfillSyncError, UsageError
from backfill_sync.models import MageConnection, Plan
from backfill_sync.planfile import dump_plan
from backfill_sync.problems import run_budget_problems
from backfill_sync.render import render_plan_json, render_plan_markdown, render_plan_text

EXIT_CHANGES = 2


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@format_option(
    "json", "markdown", help="text for people, json for machines, markdown for a pull-request comment."
)
@click.option("--out", type=click.Path(dir_okay=False), help="Also save the plan as JSON, for `apply FILE`.")
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there is nothing to do, 2 when there are changes (blocked ones too), 1 on error.",
)
@click.option("--allow-restart", is_flag=True, help="Plan restarts of cancelled backfills wanted started.")
@max_total_runs_option
@codequality_option
@max_runs_option
@pipeline_filter_options
@mage_connection_options
def plan(
    paths: tuple[str, ...],
    output_format: str,
    out: str | None,
    detailed_exitcode: bool,
    allow_restart: bool,
    max_total_runs: int,
    codequality: str | None,
    max_runs: int,
    pipelines: tuple[str, ...],
    excludes: tuple[str, ...],
    connection: MageConnection,
) -> int:
    """Compare the manifests with live Mage and show what apply would do.

    PATHS are manifest files or folders of *.yaml/*.yml files (default: backfills/). Manifests are
    validated first; nothing is sent to Mage when one is invalid. Each change is shown per backfill
    and per field, with the pipeline runs it sets off:

    \b
        backfill-sync plan backfills/
        backfill-sync plan --format markdown > plan.md     # for a PR comment
        backfill-sync plan --out plan.json && backfill-sync apply plan.json
        backfill-sync plan --detailed-exitcode             # 0 nothing to do, 2 changes, 1 error

    A plan whose new runs (starts, restarts, retries, new dates) add up to more than --max-total-runs
    is shown, then fails (exit 1, and no --out file): apply would refuse it, so a pull request should
    not pass with it.

    Under GitHub Actions (GITHUB_ACTIONS=true) the Markdown plan is also appended to the job summary
    ($GITHUB_STEP_SUMMARY), cut to GitHub's 1 MiB per step, and problems with a place in a manifest
    (invalid manifests, ambiguous matches, foreign ids, unknown pipelines, the run budget) are
    annotated on their lines. --codequality FILE writes the same problems as a GitLab Code Quality
    report.

    \b
    Markdown starts with a hidden line, for a workflow to find (and update) its PR comment by:
        <!-- backfill-sync:plan -->
    """
    if out and not out.endswith(".json"):
        raise UsageError(
            f"--out {out}: a saved plan is JSON and its name must end in .json (apply relies on it)"
        )
    with CiReport(codequality) as report:
        manifests = load_selected_manifests(paths, max_runs=max_runs, includes=pipelines, excludes=excludes)
        with MageClient(connection) as client:
            the_plan = build_plan(client, manifests, connection, allow_restart=allow_restart)
        click.echo(_render(the_plan, output_format), nl=False)
        append_step_summary(the_plan)
        check_plan_budget(the_plan, max_total_runs, report)
        if out:
            _save(Path(out), the_plan)
    return EXIT_CHANGES if detailed_exitcode and the_plan.has_changes() else 0


def _render(the_plan: Plan, output_format: str) -> str:
    if output_format == "json":
        return render_plan_json(the_plan)
    if output_format == "markdown":
        return render_plan_markdown(the_plan)
    return render_plan_text(the_plan, color=stdout_color())


def _save(path: Path, the_plan: Plan) -> None:
    try:
        path.write_text(dump_plan(the_plan), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot save the plan to {path}: {exc.strerror}") from None


def append_step_summary(the_plan: Plan) -> None:
    """Under GitHub Actions, the plan also goes to the job's summary page, cut to what is left of 1 MiB."""
    report.append_step_summary(
        lambda budget: render_plan_markdown(the_plan, max_chars=STEP_SUMMARY_LIMIT, max_bytes=budget), "plan"
    )


def check_plan_budget(the_plan: Plan, max_total_runs: int, report: CiReport) -> None:
    """Fail a plan that apply would refuse, naming each entry that starts runs."""
    problems = run_budget_problems(the_plan, max_total_runs)
    if problems:
        report.add(problems)
        raise BackfillSyncError(
            f"the plan starts {planned_runs(the_plan)} pipeline runs, more than --max-total-runs "
            f"{max_total_runs}, so apply would refuse it; split the change, or raise --max-total-runs "
            "(for plan and apply) if that many runs are intended"
        )
