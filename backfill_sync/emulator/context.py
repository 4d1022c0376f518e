"""What every API handler gets: the store and who is asking."""

from __future__ import annotations

from dataclasses import dataclass

from backfill_sync.emulator.apierrors import missing_pipeline
from backfill_sync.emulator.auth import Identity
from backfill_sync.emulator.state import PipelineRow, Store


@dataclass(frozen=True, slots=True)
class Context:
    store: Store
    identity: Identity

    def pipeline(self, uuid: str) -> PipelineRow:
        """The parent pipeline of a nested route; a missing one is Mage's 500, not a 404."""
        with self.store.lock:
            found = self.store.pipelines.get(uuid)
        if found is None:
            raise missing_pipeline(uuid)
        return found
