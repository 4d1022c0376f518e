"""The `backfill-sync` command line: parse, wire, print, exit. The only package that echoes."""

from __future__ import annotations

from collections.abc import Sequence

import click

from backfill_sync import __version__
from backfill_sync.cli import (
    apply_cmd,
    emulator_cmd,
    fmt_cmd,
    import_cmd,
    plan_cmd,
    schema_cmd,
    status_cmd,
    validate_cmd,
    wait_cmd,
)
from backfill_sync.cli.output import report_error
from backfill_sync.errors import BackfillSyncError

HELP = """Manage Mage backfills as code.

One YAML manifest per pipeline (backfills/<pipeline_uuid>.yaml) says which backfills should exist,
over which date window, and whether they should run:

\b
    # yaml-language-server: $schema=../schemas/backfill-manifest.schema.json
    pipeline_uuid: daily_sales
    backfills:
      - name: reload-2024-q1
        start_datetime: '2024-01-01T00:00:00Z'
        end_datetime: '2024-03-31T00:00:00Z'
        interval_type: day
        interval_units: 1
        variables: {region: eu}
        state: started

\b
Typical flow:  backfill-sync validate  ->  backfill-sync plan  ->  backfill-sync apply
Exit codes: 0 success, 1 any error, 2 changes present (only with plan --detailed-exitcode).
"""


@click.group(help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="backfill-sync")
def cli() -> None:
    pass


cli.add_command(validate_cmd.validate)
cli.add_command(plan_cmd.plan)
cli.add_command(apply_cmd.apply)
cli.add_command(status_cmd.status)
cli.add_command(wait_cmd.wait)
cli.add_command(fmt_cmd.fmt)
cli.add_command(import_cmd.import_backfills)
cli.add_command(schema_cmd.schema)
cli.add_command(emulator_cmd.emulator)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code: 0 ok, 1 any error (click's usage code 2 included)."""
    try:
        result = cli.main(args=argv, prog_name="backfill-sync", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 1
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except BackfillSyncError as exc:
        report_error(exc)
        return 1
    return result if isinstance(result, int) else 0
