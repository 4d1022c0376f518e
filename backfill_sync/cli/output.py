"""How the CLI reports errors: one line per problem on stderr, never a traceback for user mistakes."""

from __future__ import annotations

import click

from backfill_sync.cli.report import echo_annotations, echo_error_annotation
from backfill_sync.errors import BackfillSyncError, ManifestError
from backfill_sync.problems import problems_of


def report_error(exc: BackfillSyncError) -> None:
    if isinstance(exc, ManifestError):
        for violation in exc.violations:
            click.echo(str(violation), err=True)
    # Under GitHub Actions: on the manifest lines the error is about, else on the run itself.
    problems = problems_of(exc)
    if problems:
        echo_annotations(problems, err=True)
    else:
        echo_error_annotation(str(exc))
    click.echo(f"Error: {exc}", err=True)
