"""`python -m backfill_sync` runs the same CLI as the `backfill-sync` console script."""

from __future__ import annotations

from backfill_sync.entry import run

run()
