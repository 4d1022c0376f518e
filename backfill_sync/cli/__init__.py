"""The `backfill-sync` command line: parse, wire, print, exit. The only package that echoes."""

from __future__ import annotations

from collections.abc import Sequence

import click

from backfill_sync import __version__
from backfill_sync.cli.lazy import LazyCommand, LazyGroup
from backfill_sync.entry import interrupted
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
Exit codes: 0 success; 1 any error (for wait and apply --wait also: dates failed or were cancelled,
entries declared started are not applied, the timeout passed); 2 plan --detailed-exitcode: changes
present, status --detailed-exitcode: not finished and no date failed; 3 status --detailed-exitcode:
dates failed or were cancelled; 130 interrupted (Ctrl-C).
"""


# A command's module is imported only when it runs, so `--help`, `--version` and `validate` start without
# httpx, deepdiff, ruamel or the emulator. One entry adds a command: its name, `module:function` under
# backfill_sync.cli, and the first sentence of its help, which `backfill-sync --help` lists without
# importing it (tests/test_cli_basics.py checks the sentence is the command's own).
COMMANDS = (
    LazyCommand(
        "validate",
        "validate_cmd:validate",
        "Check backfill manifests offline: YAML, schema, and rules Mage itself does not check.",
    ),
    LazyCommand(
        "plan",
        "plan_cmd:plan",
        "Compare the manifests with live Mage and show what apply would do.",
    ),
    LazyCommand(
        "apply",
        "apply_cmd:apply",
        "Make Mage match the manifests, or carry out a plan saved with `plan --out FILE`.",
    ),
    LazyCommand(
        "status",
        "status_cmd:status",
        "Show how far each managed backfill is: its dates, by the status of their latest run.",
    ),
    LazyCommand(
        "wait",
        "wait_cmd:wait",
        "Wait until every started backfill of the manifests is finished, then report its dates.",
    ),
    LazyCommand(
        "show",
        "show_cmd:show",
        "Show a plan saved with `plan --out PLAN.json`, as plan showed it; Mage is not contacted.",
    ),
    LazyCommand(
        "fmt",
        "fmt_cmd:fmt",
        "Rewrite manifests in one canonical form, keeping every comment.",
    ),
    LazyCommand(
        "import",
        "import_cmd:import_backfills",
        "Write one manifest per pipeline from the backfills that already exist in Mage.",
    ),
    LazyCommand(
        "schema",
        "schema_cmd:schema",
        "Print the JSON Schema of backfill manifests (for editors and other tools).",
    ),
    LazyCommand(
        "emulator",
        "emulator_cmd:emulator",
        "Serve a Mage 0.9.80-compatible backfill API on 127.0.0.1 (for tests and demos).",
    ),
)


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    help=HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", prog_name="backfill-sync")
def cli() -> None:
    pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code: 0 ok, 1 any error (click's usage code 2 included), 130 on
    Ctrl-C wherever it comes (click turns it into Abort; an import may raise it as it is)."""
    try:
        result = cli.main(args=argv, prog_name="backfill-sync", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 1
    except click.Abort as exc:
        if by_ctrl_c(exc):
            return interrupted()
        click.echo("Aborted.", err=True)
        return 1
    except KeyboardInterrupt:
        return interrupted()
    except BackfillSyncError as exc:
        from backfill_sync.cli.output import report_error  # not on the --help path: it imports models

        report_error(exc)
        return 1
    return result if isinstance(result, int) else 0


def by_ctrl_c(abort: click.Abort) -> bool:
    """Whether click's Abort stands for a Ctrl-C: click raises it `from` the KeyboardInterrupt while it
    runs a command, and `from None` (the interrupt only its context) at a prompt such as confirm."""
    return isinstance(abort.__cause__, KeyboardInterrupt) or isinstance(abort.__context__, KeyboardInterrupt)
