"""Pausing Python's cycle collector while a command builds a great many objects that form no cycles."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycles_left_alone() -> Iterator[None]:
    """Loading manifests or reading a listing makes a great many small objects and keeps most, none of
    them in reference cycles; the cycle collector would only walk them (and all kept before) over and
    over. Not for code that sends many requests: the HTTP library leaves cycles behind each one."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
