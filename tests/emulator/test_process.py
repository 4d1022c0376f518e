"""`backfill-sync emulator` as a process: URL first, serves, exits 0 on SIGTERM and SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.emulator_http import call
from tests.emulator_process import start_emulator, stop_process


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
