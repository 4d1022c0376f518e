"""`backfill-sync validate`: check manifests offline and report every problem found."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from backfill_sync.cli.ci import CiReport, codequality_option
from backfill_sync.cli.options import format_option, max_runs_option, pipeline_filter_options
from backfill_sync.cli.report import echo_annotations, violations_json
from backfill_sync.codequality import render_codequality
from backfill_sync.manifests.loader import load_manifests
from backfill_sync.models import Manifest, Violation
from backfill_sync.problems import violation_problems
from backfill_sync.schedule import count_runs

HELP = """Check backfill manifests offline: YAML, schema, and rules Mage itself does not check.

PATHS are manifest files, or folders meaning their *.yaml/*.yml files (not recursive);
the default is backfills/. One file per pipeline, named <pipeline_uuid>.yaml:

\b
    # yaml-language-server: $schema=../schemas/backfill-manifest.schema.json
    pipeline_uuid: daily_sales
    backfills:
      - name: reload-2024-q1            # unique in the file
        start_datetime: '2024-01-01T00:00:00Z'  # or a date, or [.ffffff] and +02:00
        end_datetime: '2024-03-31T00:00:00Z'    # inclusive; naive values are UTC
        interval_type: day              # second|minute|hour|day|week|month|year|custom
        interval_units: 1               # integer >= 1; seconds for custom
        variables: {region: eu}         # optional
        state: started                  # optional: started | cancelled | absent
        retry_failed_before: '2024-05-01T12:00:00Z'  # optional: retry dates that failed before it

\b
Every problem is reported, one per line, as
    file:line:col: field.path: message
for example
    daily_sales.yaml:5:19: backfills[0].end_datetime: is before start_datetime: Mage would create no runs

\b
Also checked: end >= start, real dates, unique names, pipeline_uuid equal to the file name,
one file per pipeline, at most --max-runs runs per backfill (counted as Mage counts them),
duplicate keys, alias bombs, files over 1 MiB, non-UTF-8 bytes. `backfill-sync schema` prints
the JSON Schema. Under GitHub Actions (GITHUB_ACTIONS=true) problems are also printed as
::error annotations. For GitLab, --format codequality prints them as a Code Quality report (a JSON
array; `[]` when valid), and --codequality FILE writes that report next to the text output.
Exit code 0 when everything is valid, 1 otherwise.
"""


@click.command(help=HELP)
@click.argument("paths", nargs=-1, type=click.Path())
@format_option(
    "json",
    "codequality",
    help="text: one line per problem and a summary. json: a list of {file, line, col, path, message}. "
    "codequality: a GitLab Code Quality report.",
)
@codequality_option
@max_runs_option
@pipeline_filter_options
def validate(
    paths: tuple[str, ...],
    output_format: str,
    codequality: str | None,
    max_runs: int,
    pipelines: tuple[str, ...],
    excludes: tuple[str, ...],
) -> int:
    with CiReport(codequality) as report:
        manifests, violations = load_manifests(paths, max_runs, include=pipelines, exclude=excludes)
        report.add(violation_problems(violations), annotate=False)
    if output_format != "text":
        if output_format == "json":
            click.echo(violations_json(violations))
        else:
            click.echo(render_codequality(report.problems, root=Path.cwd()), nl=False)
        # Annotations go to stderr here so stdout stays one JSON document (the runner reads both).
        echo_annotations(violations, err=True)
    else:
        echo_annotations(violations)
        for violation in violations:
            click.echo(str(violation))
        click.echo(summarise(manifests, violations))
    return 1 if violations else 0


def summarise(manifests: Sequence[Manifest], violations: Sequence[Violation]) -> str:
    """`4 manifests valid (7 backfills; 1234 runs if all were started, 13 of them in entries with
    state: started)`, or how many problems were found where.

    Only `state: started` entries start runs when applied; the others are counted as what starting
    them would cost. `state: absent` entries are deleted, never started, so they count no runs.
    """
    if violations:
        files = len({violation.file for violation in violations})
        return f"{_plural(len(violations), 'problem')} in {_plural(files, 'file')}"
    backfills = [backfill for manifest in manifests for backfill in manifest.backfills]
    runs = [
        (count_runs(backfill.schedule), backfill.state)
        for backfill in backfills
        if backfill.schedule is not None and backfill.state != "absent"
    ]
    total = sum(count for count, _ in runs)
    started = sum(count for count, state in runs if state == "started")
    return (
        f"{_plural(len(manifests), 'manifest')} valid ({_plural(len(backfills), 'backfill')}; "
        f"{_plural(total, 'run')} if all were started, {started} of them in entries with state: started)"
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
