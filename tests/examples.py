"""The repository's examples/ folder as tests use it: paths, pipelines, and an emulator that knows them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.emulator_process import start_emulator

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_BACKFILLS = ROOT / "examples" / "backfills"
EXAMPLE_CI = ROOT / "examples" / "ci"
OWNER_EMAIL, OWNER_PASSWORD = "admin@admin.com", "admin"
# The emulator's read-only user (role Viewer), as CI plans with.
VIEWER_EMAIL, VIEWER_PASSWORD = "viewer@example.com", "viewer"


def example_pipelines() -> list[str]:
    """The pipeline uuids of examples/backfills (one manifest per pipeline, named after it)."""
    return sorted(path.stem for path in EXAMPLE_BACKFILLS.glob("*.yaml"))


def copy_examples(destination: Path) -> Path:
    """A private copy of examples/backfills, so a test may change or reformat it freely."""
    return Path(shutil.copytree(EXAMPLE_BACKFILLS, destination))


@contextmanager
def examples_emulator() -> Iterator[str]:
    """A fresh emulator that has the examples' pipelines, and whose runs never finish by themselves."""
    pipelines = [arg for uuid in example_pipelines() for arg in ("--pipeline", uuid)]
    with start_emulator(*pipelines, "--run-seconds", "0") as url:
        yield url
