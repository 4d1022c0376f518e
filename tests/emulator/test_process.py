"""`backfill-sync emulator` as a process: URL first, serves, exits 0 on SIGTERM and SIGINT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from tests.emulator_http import call
from tests.emulator_process import has_exited, start_emulator, stop_process


def test_start_emulator_serves_with_auth_on_and_pipelines():
    with start_emulator("--pipeline", "he_a") as url:
        assert call(url, "GET", "/api/backfills").status == 401
        assert call(url, "GET", "/_emulator/requests").body == {
            "requests": [{"method": "GET", "path": "/api/backfills", "query": {}}]
        }


def test_no_auth_flag():
    with start_emulator("--no-auth", "--pipeline", "he_a") as url:
        assert call(url, "GET", "/api/pipelines/he_a").body["pipeline"]["uuid"] == "he_a"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_it_cleanly(signum):
    process = subprocess.Popen(
        [sys.executable, "-m", "backfill_sync", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("http://127.0.0.1:")
        os.kill(process.pid, signum)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        assert process.stderr.read() == ""
    finally:
        stop_process(process)
        if process.stderr is not None:
            process.stderr.close()


def run_detached(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backfill_sync", "emulator", "--detach", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_detach_prints_exports_for_eval_and_leaves_the_server_running():
    ran = run_detached("--pipeline", "he_a")
    exports = dict(line.removeprefix("export ").split("=", 1) for line in ran.stdout.splitlines())
    pid = int(exports["BACKFILL_SYNC_EMULATOR_PID"])
    try:
        assert ran.returncode == 0, ran.stderr
        assert set(exports) == {"MAGE_URL", "MAGE_EMAIL", "MAGE_PASSWORD", "BACKFILL_SYNC_EMULATOR_PID"}
        assert (exports["MAGE_EMAIL"], exports["MAGE_PASSWORD"]) == ("admin@admin.com", "admin")
        assert exports["MAGE_URL"].startswith("http://127.0.0.1:")
        assert call(exports["MAGE_URL"], "GET", "/api/backfills").status == 401, "it answers, auth on"
        assert ran.stderr == f"emulator listening on {exports['MAGE_URL']}; stop it with: kill {pid}\n"
    finally:
        os.kill(pid, signal.SIGTERM)
    assert has_exited(pid), "the detached emulator did not stop on SIGTERM"


def test_detach_says_why_the_emulator_did_not_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = run_detached("--port", str(port))
    assert (ran.returncode, ran.stdout) == (1, "")
    assert ran.stderr == (
        f"Error: the emulator did not start: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )
