"""How the CLI reports errors: one line per problem on stderr, never a traceback for user mistakes."""

from __future__ import annotations

import click

from backfill_sync.cli.report import echo_annotations, echo_error_annotation
from backfill_sync.errors import BackfillSyncError, ManifestError
from backfill_sync.problems import problems_of
from backfill_sync.safe_text import printable, printable_lines


def report_error(exc: BackfillSyncError) -> None:
    """Messages may quote Mage's words, names and file names: each line is printed with its control and
    invisible characters escaped, so no text can repaint the terminal or start a CI log command."""
    if isinstance(exc, ManifestError):
        for violation in exc.violations:
            click.echo(printable(str(violation)), err=True)
    # Under GitHub Actions: on the manifest lines the error is about, else on the run itself.
    problems = problems_of(exc)
    if problems:
        echo_annotations(problems, err=True)
    else:
        echo_error_annotation(str(exc))
    click.echo(f"Error: {printable_lines(str(exc))}", err=True)
