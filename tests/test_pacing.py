"""The pacer's limit on requests in flight, driven by a fake clock and model servers: one that serves one
request at a time (real Mage) and one that serves any number in parallel (a network in between)."""

from __future__ import annotations

import threading
from collections import deque
from contextlib import AbstractContextManager

from backfill_sync.pacing import START, Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Server:
    """A client that keeps as many requests out as the pacer allows (many workers waiting), against a
    server that answers each `seconds` after it starts on it: one at a time, or all at once."""

    def __init__(self, pacer: Pacer, clock: Clock, seconds: float, *, one_at_a_time: bool) -> None:
        self.pacer, self.clock, self.seconds = pacer, clock, seconds
        self.one_at_a_time = one_at_a_time
        self.out: deque[tuple[float, AbstractContextManager[None]]] = deque()
        self.free_at = 0.0
        self.most_out = 0

    def answer(self, count: int) -> list[int]:
        """Answers `count` requests; the limit after each."""
        limits = []
        self._send()
        for _ in range(count):
            self.clock.now, slot = self.out.popleft()
            slot.__exit__(None, None, None)
            limits.append(self.pacer.limit)
            self._send()
        return limits

    def drain(self) -> None:
        """Answers what is out, sending nothing more."""
        while self.out:
            self.clock.now, slot = self.out.popleft()
            slot.__exit__(None, None, None)

    def _send(self) -> None:
        while len(self.out) < self.pacer.limit:
            slot = self.pacer.slot("PUT", f"/api/pipelines/p/backfills/{len(self.out)}")
            slot.__enter__()
            if self.one_at_a_time:
                self.free_at = max(self.free_at, self.clock.now) + self.seconds
                done = self.free_at
            else:
                done = self.clock.now + self.seconds
            self.out.append((done, slot))
            self.out = deque(sorted(self.out, key=lambda pair: pair[0]))
            self.most_out = max(self.most_out, len(self.out))


def test_a_server_that_serves_one_at_a_time_gets_about_two():
    clock = Clock()
    pacer = Pacer(16, timeout=30.0, clock=clock)
    server = Server(pacer, clock, 0.05, one_at_a_time=True)
    limits = server.answer(200)
    assert server.most_out <= 3
    assert sum(limits[-100:]) / 100 <= 2.5


def test_a_server_that_serves_in_parallel_gets_the_ceiling():
    clock = Clock()
    pacer = Pacer(16, timeout=30.0, clock=clock)
    limits = Server(pacer, clock, 0.02, one_at_a_time=False).answer(100)
    assert limits[-1] == 16
    assert limits.index(16) < 30  # within a few round trips


def test_a_server_that_starts_queueing_is_backed_off_at_once():
    clock = Clock()
    pacer = Pacer(16, timeout=30.0, clock=clock)
    parallel = Server(pacer, clock, 0.02, one_at_a_time=False)
    parallel.answer(100)
    parallel.drain()
    limits = Server(pacer, clock, 0.02, one_at_a_time=True).answer(20)
    assert max(limits[3:]) <= 3


def test_an_answer_that_takes_a_quarter_of_the_timeout_leaves_one_in_flight():
    clock = Clock()
    pacer = Pacer(16, timeout=8.0, clock=clock)
    quick = Server(pacer, clock, 0.5, one_at_a_time=False)
    assert quick.answer(100)[-1] == 16
    quick.drain()
    assert Server(pacer, clock, 2.0, one_at_a_time=False).answer(1) == [1]


def test_a_request_without_an_answer_halves_the_limit():
    clock = Clock()
    pacer = Pacer(16, timeout=30.0, clock=clock)
    server = Server(pacer, clock, 0.02, one_at_a_time=False)
    server.answer(100)
    server.drain()
    assert pacer.limit == 16
    try:
        with pacer.slot("PUT", "/api/backfills/1"):
            raise OSError("connection reset")
    except OSError:
        pass
    assert pacer.limit == 8


def test_a_ceiling_of_one_sends_one_at_a_time():
    clock = Clock()
    pacer = Pacer(1, timeout=30.0, clock=clock)
    server = Server(pacer, clock, 0.02, one_at_a_time=False)
    assert server.answer(20) == [1] * 20
    assert server.most_out == 1


def test_requests_beyond_the_limit_wait_for_a_slot():
    pacer = Pacer(16, timeout=30.0)
    held = [pacer.slot("GET", "/api/backfills") for _ in range(START)]
    for slot in held:
        slot.__enter__()
    entered = threading.Event()

    def third() -> None:
        with pacer.slot("GET", "/api/backfills"):
            entered.set()

    waiting = threading.Thread(target=third)
    waiting.start()
    assert not entered.wait(timeout=0.2)
    held[0].__exit__(None, None, None)
    assert entered.wait(timeout=5)
    waiting.join(timeout=5)
    held[1].__exit__(None, None, None)


def test_kinds_are_timed_apart():
    # A slow kind (a page of a big listing) does not make quick ones (PUTs) look queued, or the reverse.
    clock = Clock()
    pacer = Pacer(16, timeout=30.0, clock=clock)
    server = Server(pacer, clock, 0.02, one_at_a_time=False)
    server.answer(100)
    server.drain()
    page = pacer.slot("GET", "/api/backfills")
    page.__enter__()
    clock.now += 0.8
    page.__exit__(None, None, None)
    assert server.answer(20)[-1] == 16
