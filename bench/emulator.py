"""What the benchmarks share: an emulator subprocess, and its /_emulator control endpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def emulator(*pipelines: str) -> Iterator[str]:
    """Start `backfill-sync emulator` on a free port, yield its URL, stop it by its pid."""
    args = [arg for uuid in pipelines for arg in ("--pipeline", uuid)]
    command = [sys.executable, "-m", "backfill_sync", "emulator", "--port", "0", "--run-seconds", "0", *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def control(url: str, method: str, path: str, body: Any = None) -> Any:
    """One call of the emulator's /_emulator endpoints; its JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read() or b"null")


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start
