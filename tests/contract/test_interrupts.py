"""Ctrl-C, for real: SIGINT to a `backfill-sync` subprocess at a moment the test chooses. The emulator
holds a request (a latency fault) and its request log says when the command sent it; the signal goes
then, never after a sleep. A held request is answered after HELD seconds: the command lets requests in
flight end before it exits (for apply, that is the point: a backfill is never left half written)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backfill_sync.client import MageClient
from backfill_sync.entry import INTERRUPTED
from tests.contract.servers import EMULATOR_FLAG_PIPELINE, MageServer
from tests.contract.workspace import Workspace, by_name, mine
from tests.emulator_process import start_emulator

HELD = 3.0  # how long the emulator holds a request: the signal, sent at once, lands well within it
SAFETY = 60.0  # a deadline for the synchronisation itself, only a hang reaches it


@pytest.fixture
def server() -> Iterator[MageServer]:
    """An emulator of this test's own (a held request must not slow anyone else), runs never finishing."""
    with start_emulator("--pipeline", EMULATOR_FLAG_PIPELINE, "--run-seconds", "0") as url:
        yield MageServer.for_emulator(url)


@pytest.fixture
def ws(tmp_path: Path, server: MageServer) -> Workspace:
    return Workspace(tmp_path, server, server.flag_pipeline)


def start(server: MageServer, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "MAGE_URL": server.url,
        "MAGE_EMAIL": server.owner.email,
        "MAGE_PASSWORD": server.owner.password,
        "NO_COLOR": "1",
    }
    for name in ("MAGE_TOKEN", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY"):
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "backfill_sync", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


Match = Callable[[dict[str, Any]], bool]


def interrupt_once(
    server: MageServer,
    process: subprocess.Popen[str],
    sent: Match,
    count: int = 1,
    *,
    after: Match | None = None,
) -> tuple[int, str, str]:
    """SIGINT as soon as the emulator has received `count` requests matching `sent` (counted from the
    first request matching `after`, when given); the outcome."""
    before = len(server.requests())
    deadline = time.monotonic() + SAFETY
    while _matches(server.requests()[before:], sent, after) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the command never sent the request"
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=SAFETY + HELD)
    return process.returncode, out, err


CREATE = r"^/api/pipelines/[^/]+/backfills$"


def creates(request: dict[str, Any]) -> bool:
    """A backfill create (not the login, which is a POST too)."""
    return request["method"] == "POST" and re.match(CREATE, request["path"]) is not None


def _matches(requests: list[dict[str, Any]], sent: Match, after: Match | None) -> int:
    if after is not None:
        begun = next((i for i, request in enumerate(requests) if after(request)), None)
        requests = [] if begun is None else requests[begun:]
    return sum(1 for request in requests if sent(request))


def hold(server: MageServer, method: str, path: str, *, times: int | None = None) -> None:
    server.inject(method=method, path=path, kind="latency", seconds=HELD, times=times)


def test_ctrl_c_while_wait_reads_mage_exits_130_with_one_line(server, ws):
    ws.write(ws.entry("listed", extra="state: started"))
    hold(server, "GET", r"/backfills", times=1)
    process = start(server, "wait", str(ws.folder))
    code, _, err = interrupt_once(
        server, process, lambda r: r["method"] == "GET" and "backfills" in r["path"]
    )
    server.clear_faults()
    assert code == 130, err
    assert "Traceback" not in err and "Aborted" not in err
    assert err.strip().splitlines()[-1] == INTERRUPTED


def test_ctrl_c_while_apply_writes_finishes_what_is_in_flight_and_says_so(server, ws):
    ws.write(*(ws.entry(label, extra="state: started") for label in ("a", "b", "c")))
    hold(server, "POST", CREATE)
    process = start(server, "apply", "--auto-approve", str(ws.folder))
    # Two creates at Mage at once (as many as apply starts with): by then every item has begun.
    code, out, err = interrupt_once(server, process, creates, count=2)
    server.clear_faults()
    assert code == 130, out + err
    assert "Apply complete" not in out
    assert "Apply interrupted (Ctrl-C): 3 done, 0 unchanged, 0 failed, 0 stale, 0 blocked, 0 skipped." in out
    assert "Traceback" not in err
    with MageClient(server.connection("owner")) as api:
        # In flight: finished, so started (the emulator's scheduler may have picked the runs up).
        assert {live.status for live in mine(api, ws)} <= {"initial", "running"}
        assert len(mine(api, ws)) == 3


def test_ctrl_c_during_a_one_at_a_time_apply_skips_what_was_not_begun(server, ws):
    ws.write(*(ws.entry(label, extra="state: started") for label in ("a", "b", "c")))
    hold(server, "POST", CREATE)
    process = start(server, "apply", "--auto-approve", "--parallelism", "1", str(ws.folder))
    code, out, err = interrupt_once(server, process, creates)
    server.clear_faults()
    assert code == 130, out + err
    assert "1 done, 0 unchanged, 0 failed, 0 stale, 0 blocked, 2 skipped" in out
    assert "Fix the cause" not in out
    assert "run apply again to finish the job" in out
    assert out.count("interrupted before it began") == 2


def test_ctrl_c_while_apply_waits_says_the_apply_was_made(server, ws):
    ws.write(ws.entry("waited", extra="state: started"))
    process = start(server, "apply", "--auto-approve", "--wait", str(ws.folder))
    # Apply's last request counts the runs its start made; the wait's polls read run counts after it.
    code, out, err = interrupt_once(
        server,
        process,
        lambda r: r["method"] == "GET" and r["query"].get("include_run_count") == "true",
        after=lambda r: r["path"] == "/api/pipeline_runs" and r["query"].get("_limit") == "1",
    )
    assert code == 130, out + err
    assert "The apply's changes were made; only the waiting stopped" in err, (out, err)
    assert "Nothing in Mage was changed" not in err
    with MageClient(server.connection("owner")) as api:
        assert by_name(api, ws, "waited").status in ("initial", "running")
