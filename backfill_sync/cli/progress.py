"""How waiting shows progress: a bar per backfill redrawn in place on a terminal; elsewhere (CI logs)
one short line per change of counts of a backfill still running, at most one a minute per backfill."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO

from backfill_sync.render.status import status_line
from backfill_sync.render.summary import painter
from backfill_sync.status import BackfillStatus

LOG_GAP_SECONDS = 60.0


class WaitProgress:
    def __init__(
        self,
        stream: IO[str],
        *,
        tty: bool,
        color: bool,
        now: Callable[[], float] = time.monotonic,
        gap: float = LOG_GAP_SECONDS,
    ) -> None:
        self._stream = stream
        self._tty = tty
        self._paint = painter(color)
        self._now = now
        self._gap = gap
        self._lines: dict[int, str] = {}
        self._logged: dict[int, float] = {}

    def update(self, status: BackfillStatus) -> None:
        if self._tty:
            self._redraw(status)
        else:
            self._log(status)

    def _redraw(self, status: BackfillStatus) -> None:
        drawn = len(self._lines)
        self._lines[status.live.id] = status_line(status, self._paint, bar=True)
        if drawn:
            self._stream.write(f"\x1b[{drawn}F")  # back to the first line drawn
        for line in self._lines.values():
            self._stream.write("\x1b[2K" + line + "\n")
        self._stream.flush()

    def _log(self, status: BackfillStatus) -> None:
        if status.progress is None or status.progress.finished:
            return  # the end result, printed right after, says it once
        last = self._logged.get(status.live.id)
        if last is not None and self._now() - last < self._gap:
            return
        self._logged[status.live.id] = self._now()
        self._stream.write(status_line(status, self._paint) + "\n")
        self._stream.flush()
