"""How the CLI reports errors: one line per problem on stderr, never a traceback for user mistakes."""

from __future__ import annotations

import click

from backfill_sync.cli.report import echo_annotations
from backfill_sync.errors import BackfillSyncError, ManifestError


def report_error(exc: BackfillSyncError) -> None:
    if isinstance(exc, ManifestError):
        for violation in exc.violations:
            click.echo(str(violation), err=True)
        echo_annotations(exc.violations, err=True)
    click.echo(f"Error: {exc}", err=True)
