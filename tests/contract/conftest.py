"""The server a contract test runs against: the emulator always, real Mage only under `-m real_mage`."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backfill_sync.cli import main
from backfill_sync.client import Backoff, MageClient
from backfill_sync.models import BackfillFields, LiveBackfill
from tests.contract.servers import EMULATOR_FLAG_PIPELINE, EMULATOR_PIPELINE, Credentials, MageServer
from tests.contract.workspace import Workspace, clean_up
from tests.emulator_process import start_emulator


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[MageServer]:
    with start_emulator("--pipeline", EMULATOR_PIPELINE, "--pipeline", EMULATOR_FLAG_PIPELINE) as url:
        yield MageServer.for_emulator(url)


@pytest.fixture(scope="session")
def emulator_no_auth_url() -> Iterator[str]:
    with start_emulator("--pipeline", EMULATOR_PIPELINE, "--no-auth") as url:
        yield url


@pytest.fixture(scope="session")
def real_mage_server() -> MageServer:
    missing = [
        name
        for name in (
            "BFS_REAL_MAGE_URL",
            "BFS_REAL_MAGE_PIPELINE",
            "BFS_REAL_MAGE_EDITOR_EMAIL",
            "BFS_REAL_MAGE_EDITOR_PASSWORD",
        )
        if not os.environ.get(name)
    ]
    if missing:
        pytest.fail(f"real-Mage tests need {', '.join(missing)}: run them with `make test-real-mage`")
    return MageServer(
        kind="real",
        url=os.environ["BFS_REAL_MAGE_URL"],
        owner=Credentials(
            os.environ.get("BFS_REAL_MAGE_OWNER_EMAIL", "admin@admin.com"),
            os.environ.get("BFS_REAL_MAGE_OWNER_PASSWORD", "admin"),
        ),
        editor=Credentials(
            os.environ["BFS_REAL_MAGE_EDITOR_EMAIL"], os.environ["BFS_REAL_MAGE_EDITOR_PASSWORD"]
        ),
        pipeline_uuid=os.environ["BFS_REAL_MAGE_PIPELINE"],
        can_inject_faults=False,
        viewer=Credentials(
            os.environ.get("BFS_REAL_MAGE_VIEWER_EMAIL", "bfs-viewer@example.com"),
            os.environ.get("BFS_REAL_MAGE_VIEWER_PASSWORD", "bfs-viewer-password"),
        ),
        flag_pipeline=os.environ.get("BFS_REAL_MAGE_FLAG_PIPELINE", "bfs_flags"),
        flag_dir=os.environ.get("BFS_REAL_MAGE_FLAG_DIR"),
    )


# Every server-backed test runs on the emulator, and on real Mage too under `-m real_mage`.
SERVERS = [
    pytest.param("emulator", id="emulator"),
    pytest.param("real", id="real-mage", marks=pytest.mark.real_mage),
]


def _server(request: pytest.FixtureRequest, emulator_fixture: str) -> MageServer:
    name = emulator_fixture if request.param == "emulator" else "real_mage_server"
    server: MageServer = request.getfixturevalue(name)
    return server


@pytest.fixture(params=SERVERS)
def mage_server(request: pytest.FixtureRequest) -> MageServer:
    """The server of a contract test: the default emulator, or real Mage."""
    return _server(request, "emulator_server")


@pytest.fixture(params=["owner", "editor"])
def role(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def fetch(api: MageClient, backfill_id: int, *, include_run_count: bool = False) -> LiveBackfill:
    """A backfill the test knows exists."""
    live = api.get_backfill(backfill_id, include_run_count=include_run_count)
    assert live is not None, f"backfill {backfill_id} is missing"
    return live


class Recorder:
    """Collects the backoff pauses a client asked for, instead of sleeping through them."""

    def __init__(self) -> None:
        self.pauses: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)


@pytest.fixture
def pauses() -> Recorder:
    return Recorder()


@pytest.fixture
def client(mage_server: MageServer, role: str, pauses: Recorder) -> Iterator[MageClient]:
    connection = mage_server.connection(role)
    with MageClient(connection, timeout=30.0, backoff=Backoff(sleep=pauses)) as api:
        yield api


class Factory:
    """Creates backfills with unique names and deletes whatever is left of them afterwards."""

    def __init__(self, api: MageClient, pipeline_uuid: str) -> None:
        self.api = api
        self.pipeline_uuid = pipeline_uuid
        self.prefix = f"hc-{uuid.uuid4().hex[:8]}"
        self.created: list[int] = []

    def name(self, label: str) -> str:
        return f"{self.prefix}-{label}"

    def create(self, label: str, **fields: Any) -> LiveBackfill:
        live = self.api.create_backfill(self.pipeline_uuid, BackfillFields(name=self.name(label), **fields))
        self.created.append(live.id)
        return live

    def mine(self) -> list[LiveBackfill]:
        rows = self.api.list_backfills(self.pipeline_uuid)
        return [row for row in rows if (row.name or "").startswith(self.prefix)]

    def clean_up(self) -> None:
        for live in self.mine():
            if live.status in ("initial", "running"):
                self.api.set_status(self.pipeline_uuid, live.id, "cancelled")
            self.api.delete_backfill(self.pipeline_uuid, live.id)


@pytest.fixture
def backfills(client: MageClient, mage_server: MageServer) -> Iterator[Factory]:
    factory = Factory(client, mage_server.pipeline_uuid)
    try:
        yield factory
    finally:
        if mage_server.can_inject_faults:
            mage_server.clear_faults()
        factory.clean_up()


# -- end-to-end CLI scenarios (test_plan_apply.py, test_import.py) ------------------------------------


@dataclass(frozen=True)
class Ran:
    """What one CLI invocation did."""

    code: int
    out: str
    err: str


@pytest.fixture(scope="session")
def quiet_emulator() -> Iterator[MageServer]:
    """An emulator whose runs never finish by themselves: what a cancel stops is exact."""
    pipelines = ("--pipeline", EMULATOR_PIPELINE, "--pipeline", EMULATOR_FLAG_PIPELINE)
    with start_emulator(*pipelines, "--run-seconds", "0") as url:
        yield MageServer.for_emulator(url)


@pytest.fixture(scope="session")
def lively_emulator() -> Iterator[MageServer]:
    """An emulator whose runs finish on their own, quickly, as real Mage's do slowly: for waiting."""
    pipelines = ("--pipeline", EMULATOR_PIPELINE, "--pipeline", EMULATOR_FLAG_PIPELINE)
    with start_emulator(*pipelines, "--run-seconds", "0.3") as url:
        yield MageServer.for_emulator(url)


@pytest.fixture(params=SERVERS)
def lively(request: pytest.FixtureRequest) -> MageServer:
    """The server of a run-lifecycle scenario: runs finish by themselves (the lively emulator, real Mage)."""
    return _server(request, "lively_emulator")


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> MageServer:
    """The server of an end-to-end scenario: the quiet emulator, or real Mage."""
    return _server(request, "quiet_emulator")


@pytest.fixture
def mage(server: MageServer) -> Iterator[MageClient]:
    """The owner's view of Mage, to arrange state and check what a command left behind."""
    with MageClient(server.connection("owner")) as api:
        yield api


@pytest.fixture
def cli(
    server: MageServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Ran]:
    """Run `backfill-sync ARGS` in-process against `server`, as the owner or the editor."""
    return command_line(server, monkeypatch, capsys)


def command_line(
    server: MageServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Ran]:
    """`backfill-sync ARGS` run in-process against `server`: code, stdout and stderr."""

    def run(*args: str, role: str = "owner") -> Ran:
        who = {"owner": server.owner, "editor": server.editor, "viewer": server.viewer}[role]
        monkeypatch.setenv("MAGE_URL", server.url)
        monkeypatch.setenv("MAGE_EMAIL", who.email)
        monkeypatch.setenv("MAGE_PASSWORD", who.password)
        monkeypatch.delenv("MAGE_TOKEN", raising=False)
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


@pytest.fixture
def quiet_flags(
    tmp_path: Path,
    quiet_emulator: MageServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[tuple[Workspace, Callable[..., Ran]]]:
    """The flag pipeline on the emulator whose runs never finish by themselves, and a CLI against it;
    what the test made is cancelled and deleted afterwards."""
    workspace = Workspace(tmp_path, quiet_emulator, quiet_emulator.flag_pipeline)
    yield workspace, command_line(quiet_emulator, monkeypatch, capsys)
    with MageClient(quiet_emulator.connection("owner")) as api:
        clean_up(api, workspace)
