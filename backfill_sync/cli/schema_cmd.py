"""`backfill-sync schema`: print the manifest JSON Schema shipped with the package."""

from __future__ import annotations

import click

from backfill_sync.manifests.schema import schema_text


@click.command()
def schema() -> int:
    """Print the JSON Schema of backfill manifests (for editors and other tools)."""
    click.echo(schema_text(), nl=False)
    return 0
