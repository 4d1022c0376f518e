"""Faults a test asks for: which requests they hit, how often, and what they do to them."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

FAULT_KINDS = ("status", "drop_before", "drop_after", "latency", "error_body", "insert_backfills")

DEFAULT_ERROR = {
    "code": 500,
    "errors": [],
    "exception": "Injected by the emulator.",
    "message": "Traceback (most recent call last):\nException: Injected by the emulator.\n",
}


@dataclass
class Fault:
    kind: str
    method: str | None  # None: any method
    path: re.Pattern[str]  # searched in the URL path
    remaining: int | None  # None: every matching request, for as long as the fault is set
    status: int = 502
    retry_after: str | None = None
    seconds: float = 0.0
    error: Any = None
    count: int = 1

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and self.path.search(path) is not None


def parse_fault(spec: Any) -> Fault:
    """A fault from the JSON a test posted; ValueError says what is wrong with it."""
    if not isinstance(spec, dict):
        raise ValueError("a fault is a JSON object")
    kind = spec.get("kind")
    if kind not in FAULT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
    try:
        path = re.compile(str(spec.get("path", "")))
    except re.error as exc:
        raise ValueError(f"path is not a regular expression: {exc}") from None
    method = spec.get("method")
    times = spec.get("times", 1)
    if times is not None and (not isinstance(times, int) or times < 1):
        raise ValueError("times must be an integer >= 1, or null for every request")
    retry_after = spec.get("retry_after")
    return Fault(
        kind=kind,
        method=str(method).upper() if method not in (None, "", "*") else None,
        path=path,
        remaining=times,
        status=int(spec.get("status", 502)),
        retry_after=None if retry_after is None else str(retry_after),
        seconds=float(spec.get("seconds", 0.0)),
        error=spec.get("error") or DEFAULT_ERROR,
        count=int(spec.get("count", 1)),
    )


class FaultBook:
    """The faults in force, first added first matched; each use counts down its `times`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None
