"""Wiring shared by the commands that talk to Mage: manifests in, a client, a plan out."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO

from backfill_sync.client import MageClient
from backfill_sync.live import read_live_state
from backfill_sync.manifest import DEFAULT_MANIFEST_DIR, load_valid_manifests
from backfill_sync.models import MageConnection, Manifest, Plan
from backfill_sync.plan import compute_plan


def load_selected_manifests(
    paths: Sequence[str], *, max_runs: int, includes: Sequence[str], excludes: Sequence[str]
) -> list[Manifest]:
    """Valid manifests of the selected pipelines; any invalid one stops everything (ManifestError)."""
    return load_valid_manifests(
        paths or (DEFAULT_MANIFEST_DIR,), max_runs, include=includes, exclude=excludes
    )


def build_plan(
    client: MageClient, manifests: Sequence[Manifest], connection: MageConnection, *, allow_restart: bool
) -> Plan:
    live = read_live_state(client, manifests, mage_url=connection.url)
    return compute_plan(manifests, live, mage_url=connection.url, allow_restart=allow_restart)


def use_color(stream: IO[str]) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def stdout_color() -> bool:
    return use_color(sys.stdout)
