"""Writing a file in one step: readers see the old text or the new one, never half of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from backfill_sync.errors import UsageError

NEW_FILE_MODE = 0o644  # mkstemp makes 0600; a manifest is meant to be read and committed


def write_atomically(path: Path, text: str) -> None:
    """Replace the file in one step (a crash leaves the old or the new text), keeping its permissions."""
    mode = path.stat().st_mode if path.exists() else NEW_FILE_MODE
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        Path(temporary).chmod(mode)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_one_of_many(path: Path, text: str, written: Sequence[Path]) -> None:
    """Create the folder and write the file; an OSError is a user's problem (a folder that cannot be
    made, a full disk), so it becomes a UsageError that also names the files `written` before it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
    except OSError as exc:
        before = ", ".join(str(done) for done in written) if written else "none"
        raise UsageError(
            f"cannot write {path}: {exc.strerror or exc}; files written before this one: {before}"
        ) from exc
