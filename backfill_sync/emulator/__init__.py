"""A Mage 0.9.80-compatible emulator of the backfill API, for tests and the local demo."""

from __future__ import annotations

from backfill_sync.emulator.server import EmulatorConfig, EmulatorServer

__all__ = ["EmulatorConfig", "EmulatorServer"]
