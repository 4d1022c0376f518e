"""`backfill-sync validate`: check manifests offline."""

from __future__ import annotations

import click


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
def validate(paths: tuple[str, ...]) -> int:
    """Validate manifests (being written)."""
    raise click.ClickException("validate is not implemented yet")
