"""In-process emulators for fast tests: started on a free port in a thread, stopped in teardown."""

from __future__ import annotations

from collections.abc import Iterator

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
