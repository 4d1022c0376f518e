"""Start `backfill-sync emulator` as a subprocess for a test: `with start_emulator("--no-auth") as url:`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


def has_exited(pid: int, timeout: float = 30.0) -> bool:
    """Whether a process that is not our child (a detached emulator) ends within `timeout` seconds.

    Once its starter has exited, it is reaped by whatever adopted it, maybe late: a zombie has exited.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rpartition(")")[2].split()[0]
        except FileNotFoundError:
            return True
        except OSError:  # no /proc: ask the kernel whether the pid is still there
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            state = "?"
        if state == "Z":
            return True
        time.sleep(0.1)
    return False
