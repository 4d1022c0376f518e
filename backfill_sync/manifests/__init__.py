"""Manifests: find, parse (YAML with positions), check (schema and semantics), build, and format them.

Nothing is imported here, so `import backfill_sync.manifests.document` stays as cheap as that module.
"""
