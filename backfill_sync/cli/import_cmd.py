"""`backfill-sync import`: write manifests for the backfills that already exist in Mage."""

from __future__ import annotations

from pathlib import Path

import click

from backfill_sync.atomic import write_one_of_many
from backfill_sync.cli.options import (
    mage_connection_options,
    max_runs_option,
    pipeline_filter_options,
)
from backfill_sync.client import MageClient
from backfill_sync.errors import UsageError
from backfill_sync.importer import (
    LOCAL_SCHEMA,
    ImportedManifest,
    any_pipeline_selected,
    build_manifest_text,
    find_schema_reference,
    read_selected_backfills,
)
from backfill_sync.manifests.loader import DEFAULT_MANIFEST_DIR
from backfill_sync.models import MageConnection

HELP = """Write one manifest per pipeline from the backfills that already exist in Mage.

Reads the live backfills of every pipeline (or those chosen with --pipeline/--exclude) and writes
<out-dir>/<pipeline_uuid>.yaml in the canonical form of `fmt`, so that `validate` and `fmt --check`
pass and `plan` reports no changes. `state:` follows the live status (never started: left out;
initial, running, completed or failed: started; cancelled: cancelled); `id:` is written only where
two backfills of a pipeline share a name. The `# yaml-language-server: $schema=` modeline points at
schemas/backfill-manifest.schema.json relative to the out-dir when that file is found walking up
from the out-dir to the git root (or the current folder); without one no modeline is written and
a hint says how to add it (`backfill-sync schema > schemas/backfill-manifest.schema.json`, then
import again). `fmt` keeps whatever modeline a file has.

\b
    backfill-sync import                                  # all pipelines into backfills/
    backfill-sync import --pipeline 'sales_*' --out-dir backfills
    backfill-sync import --force && git diff backfills/   # replace existing manifests, review
    backfill-sync plan backfills/                         # afterwards: "No changes."

\b
An existing manifest is never overwritten without --force (that pipeline is left out, the others
are written). --force replaces the file with what Mage holds: its comments, descriptions,
previous_names and anything else only the manifest had are lost (review with git diff).

Backfills a manifest cannot express are listed on stderr with the reason and left out: ones with a
block_uuid, nameless ones, an incomplete or insane schedule, a second backfill of the same name (the
first, pinned by id:, is imported), and pipelines Mage cannot list because of a row it cannot read.
Exit code 0 when everything was imported, or when there is nothing to import (the selected
pipelines, or all of Mage, have no backfills: "nothing to import" on stderr); 1 when anything was
left out, or when --pipeline/--exclude match no pipeline in Mage (a typo in a filter is an error, as
in validate, fmt and plan).
"""


@click.command("import", help=HELP)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    default=DEFAULT_MANIFEST_DIR,
    show_default=True,
    help="Folder for the manifests (created if missing).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace manifests that already exist (their comments, description and previous_names are lost).",
)
@max_runs_option
@pipeline_filter_options
@mage_connection_options
def import_backfills(
    out_dir: str,
    force: bool,
    max_runs: int,
    pipelines: tuple[str, ...],
    excludes: tuple[str, ...],
    connection: MageConnection,
) -> int:
    filtered = bool(pipelines or excludes)
    with MageClient(connection) as client:
        live, skipped = read_selected_backfills(client, pipelines, excludes)
        if filtered and not live and not skipped and not any_pipeline_selected(client, pipelines, excludes):
            raise UsageError("no pipeline in Mage matches the --pipeline/--exclude filters")
    folder = Path(out_dir)
    schema = find_schema_reference(folder, Path.cwd())
    manifests: list[tuple[Path, ImportedManifest]] = []
    for uuid in sorted(live):
        path = manifest_path(folder, uuid)
        imported, left_out = build_manifest_text(
            uuid, live[uuid], file=str(path), max_runs=max_runs, schema=schema
        )
        skipped += left_out
        if imported is not None:
            manifests.append((path, imported))
    refused = _write(manifests, force)
    if schema is None and len(refused) < len(manifests):
        click.echo(_no_modeline_hint(folder), err=True)
    for item in skipped:
        click.echo(f"skipped {item}", err=True)
    for path in refused:
        click.echo(f"Error: {path} already exists; pass --force to overwrite it", err=True)
    if not live and not skipped:
        where = "the selected pipelines" if filtered else "Mage"
        click.echo(f"nothing to import: no backfills found in {where}; nothing written", err=True)
    return 1 if skipped or refused else 0


def _no_modeline_hint(folder: Path) -> str:
    return (
        f"hint: the manifests have no schema modeline, since no {LOCAL_SCHEMA} was found from {folder} "
        "up to the repository root (or the current folder). For completion in editors, save the schema "
        f"there with `backfill-sync schema > {LOCAL_SCHEMA}` and import again, or add the line "
        f"`# yaml-language-server: $schema=<path to it from {folder}>` at the top of each manifest."
    )


def manifest_path(folder: Path, pipeline_uuid: str) -> Path:
    """`<uuid>.yaml`, or an existing `<uuid>.yml` (two files for one pipeline would not validate)."""
    yml = folder / f"{pipeline_uuid}.yml"
    return yml if yml.exists() else folder / f"{pipeline_uuid}.yaml"


def _write(manifests: list[tuple[Path, ImportedManifest]], force: bool) -> list[Path]:
    refused = [path for path, _ in manifests if path.exists() and not force]
    written: list[Path] = []
    for path, imported in manifests:
        if path in refused:
            continue
        write_one_of_many(path, imported.text, written)
        written.append(path)
        click.echo(f"wrote {path} ({imported.count} backfill{'' if imported.count == 1 else 's'})")
    return refused
