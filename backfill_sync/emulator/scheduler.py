"""The background thread that moves pipeline runs and backfills along, like Mage's scheduler."""

from __future__ import annotations

import threading
import time

from backfill_sync.emulator.runs import advance_runs
from backfill_sync.emulator.state import Store


class Scheduler:
    def __init__(self, store: Store, tick_seconds: float = 0.2, run_seconds: float = 2.0) -> None:
        self._store = store
        self._tick = tick_seconds
        self._run_seconds = run_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="emulator-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stopping.wait(self._tick):
            advance_runs(self._store, time.monotonic(), self._run_seconds)
