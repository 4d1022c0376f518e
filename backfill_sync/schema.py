"""The manifest JSON Schema shipped with the package."""

from __future__ import annotations

from importlib.resources import files

SCHEMA_RESOURCE = "backfill-manifest.schema.json"


def schema_text() -> str:
    return (files("backfill_sync") / "schemas" / SCHEMA_RESOURCE).read_text(encoding="utf-8")
