"""How many requests are in flight at once: up to a ceiling, and fewer while Mage answers slower for it.

Real Mage (0.9.80) serves about one request at a time: requests sent together queue at the server, each
waiting out the others, and more at once buys nothing (measured: 4 or 8 concurrent PUTs, about the same
throughput as 1 or 2) while every answer takes longer; a write that waits there past the request timeout
becomes an unknown outcome. A Mage behind a network, or one that serves in parallel, gains a great deal
from many in flight. So the limit is found as requests go, in the spirit of TCP Vegas: it starts at two,
rises while answers come as fast as the fastest of their kind, and falls as soon as they take several
times that (they queue), to one when an answer takes a good part of the timeout. Requests beyond the
limit wait here, on our side, where no timeout runs.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

START = 2
# An answer at most this many times the fastest of its kind: Mage did not queue it.
QUICK = 1.5
# An answer at least this many times the fastest: it waited behind others.
QUEUED = 3.0
# An answer that took this part of the request timeout: nothing more waits behind the next one.
SLOW_PART_OF_TIMEOUT = 0.25

_ID = re.compile(r"/\d+(?=/|$)")
_PIPELINE = re.compile(r"/pipelines/[^/]+")


class Pacer:
    """Gate for requests: `with pacer.slot(method, path): send it`. Thread-safe."""

    def __init__(self, ceiling: int, timeout: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = max(ceiling, 1)
        self._timeout = timeout
        self._clock = clock
        self._limit = float(min(START, self.ceiling))
        self._in_flight = 0
        self._fills = 0  # how often a request took the last slot under the limit
        self._fastest: dict[str, float] = {}
        self._changed = threading.Condition()

    @property
    def limit(self) -> int:
        with self._changed:
            return int(self._limit)

    @contextmanager
    def slot(self, method: str, path: str) -> Iterator[None]:
        """Wait for room under the limit, then time the request until its answer is in."""
        with self._changed:
            self._changed.wait_for(lambda: self._in_flight < int(self._limit))
            fills = self._fills
            self._in_flight += 1
            beside = self._in_flight
            if beside >= int(self._limit):
                self._fills += 1
        start = self._clock()
        answered = False
        try:
            yield
            answered = True
        finally:
            self._done(_kind(method, path), self._clock() - start, beside, answered, fills)

    def _done(self, kind: str, seconds: float, beside: int, answered: bool, fills: int) -> None:
        with self._changed:
            self._in_flight -= 1
            if not answered:
                self._limit = max(1.0, self._limit / 2)
            else:
                # Only a limit that was reached while this request was out is worth raising.
                self._learn(kind, seconds, beside, used=self._fills > fills)
            # Wake only as many waiters as there are free slots: waking them all (16 threads, most
            # waiting while the limit is low) costs each a GIL round trip per answer, for nothing.
            self._changed.notify(max(int(self._limit) - self._in_flight, 0))

    def _learn(self, kind: str, seconds: float, beside: int, *, used: bool) -> None:
        fastest = min(self._fastest.get(kind, seconds), seconds)
        self._fastest[kind] = fastest
        if seconds >= SLOW_PART_OF_TIMEOUT * self._timeout:
            self._limit = 1.0
            return
        ratio = seconds / fastest if fastest > 0 else 1.0
        if ratio >= QUEUED:
            # Mage served the `beside` requests in `ratio` times the time of one: that many at once
            # queue; keep one being served and one waiting (two, on a Mage that serves one at a time).
            self._limit = max(1.0, min(self._limit, beside * 2 / ratio))
        elif ratio <= QUICK and used and (beside > 1 or self._limit < START):
            # Quick although others were out beside it: Mage served them side by side.
            self._limit = min(float(self.ceiling), self._limit + 1)


def _kind(method: str, path: str) -> str:
    """Requests whose answers take about as long: method and path without ids or pipeline names."""
    return f"{method} {_ID.sub('/#', _PIPELINE.sub('/pipelines/*', path))}"
