"""`backfill-sync show`: render a plan saved by `plan --out`, as `terraform show` does."""

from __future__ import annotations

from pathlib import Path

import click

from backfill_sync.cli.common import read_saved_plan, stdout_color
from backfill_sync.cli.options import format_option
from backfill_sync.render import render_plan_json, render_plan_markdown, render_plan_text


@click.command()
@click.argument("plan_file", metavar="PLAN.json", type=click.Path(dir_okay=False))
@format_option("json", "markdown", help="text for people, json for machines, markdown for a comment.")
def show(plan_file: str, output_format: str) -> int:
    """Show a plan saved with `plan --out PLAN.json`, as plan showed it; Mage is not contacted.

    \b
        backfill-sync plan --out plan.json            # in CI, kept as an artifact
        backfill-sync show plan.json                  # what apply plan.json would do
        backfill-sync show --format markdown plan.json > plan.md

    A file that is not a plan saved by this version of backfill-sync is refused (exit 1). The JSON is
    the saved plan as written (schemas/plan.schema.json).
    """
    saved = read_saved_plan(Path(plan_file))
    if output_format == "json":
        click.echo(render_plan_json(saved), nl=False)
    elif output_format == "markdown":
        click.echo(render_plan_markdown(saved), nl=False)
    else:
        click.echo(render_plan_text(saved, color=stdout_color()), nl=False)
    return 0
