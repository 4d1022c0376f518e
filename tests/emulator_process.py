"""Start `backfill-sync emulator` as a subprocess for a test: `with start_emulator("--no-auth") as url:`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

STARTUP_TIMEOUT = 30.0


@contextmanager
def start_emulator(*args: str) -> Iterator[str]:
    """Run the emulator with these extra arguments, yield its URL, and always stop it by its pid."""
    process = subprocess.Popen(
        [sys.executable, "-m", "backfill_sync", "emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the emulator did not print its URL first (got {url!r})")
        yield url
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[str]) -> int:
    """SIGTERM, then SIGKILL of the process group if it will not go; returns the exit code."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
    try:
        code = process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        code = process.wait()
    if process.stdout is not None:
        process.stdout.close()
    return code
