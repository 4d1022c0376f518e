"""The console script's entry point: Ctrl-C at any moment, even while the CLI is still being imported,
ends with one line and exit 130, never a traceback. Imports nothing of its own before it is safe."""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # as shells report a command stopped by Ctrl-C (128 + SIGINT)
INTERRUPTED = "Interrupted (Ctrl-C)."


def run() -> None:
    """`backfill-sync`: run the CLI and exit with its code."""
    try:
        from backfill_sync.cli import main

        code = main()
    except KeyboardInterrupt:
        code = interrupted()
    sys.exit(code)


def interrupted() -> int:
    """Say so in one line on stderr; the exit code for it."""
    try:
        sys.stderr.write(f"{INTERRUPTED}\n")
        sys.stderr.flush()
    except (KeyboardInterrupt, OSError):
        pass
    return EXIT_INTERRUPTED
