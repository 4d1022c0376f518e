"""Writing a file in one step: readers see the old text or the new one, never half of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

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
