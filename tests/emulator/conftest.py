"""In-process emulators for fast tests: started on a free port in a thread, stopped in teardown."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from backfill_sync.emulator import EmulatorConfig, EmulatorServer
from tests.emulator_http import Api, login

PIPELINE = "he_pipe"
OTHER_PIPELINE = "he_other"


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(pipelines=(PIPELINE, OTHER_PIPELINE), run_seconds=0)) as running:
        yield running


@pytest.fixture
def owner(server: EmulatorServer) -> Api:
    return Api(server.url, login(server.url, "admin@admin.com", "admin"))


@pytest.fixture
def editor(server: EmulatorServer) -> Api:
    return Api(server.url, login(server.url, "editor@example.com", "editor"))


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """The first truthy value of predicate, polled briefly: the emulator's scheduler ticks every 0.2 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached before the deadline")
