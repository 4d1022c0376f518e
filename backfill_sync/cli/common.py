"""Wiring shared by the commands that talk to Mage: manifests in, a client, a plan out."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from backfill_sync.client import MageClient
from backfill_sync.errors import UsageError
from backfill_sync.gc_pause import cycles_left_alone
from backfill_sync.live import read_live_state, read_run_lists, with_run_counts
from backfill_sync.manifests.loader import DEFAULT_MANIFEST_DIR, load_valid_manifests
from backfill_sync.models import LiveBackfill, MageConnection, Manifest, Plan
from backfill_sync.plan import compute_plan
from backfill_sync.plan_runs import counts_matter, progress_wanted, run_lists_wanted, with_progress
from backfill_sync.planfile import load_plan


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
    """Read what the plan needs (backfills; runs where it reconciles them; run counts of the started
    backfills it acts on, to show their progress and the runs a cancel stops) and compute it."""
    live = read_live_state(client, manifests, mage_url=connection.url)
    wanted = run_lists_wanted(manifests, live)
    cancelled = {b.id for rows in live.values() for b in rows if b.status == "cancelled"}
    runs = read_run_lists(client.runs, wanted, cancelled)

    def plan_with(live: Mapping[str, Sequence[LiveBackfill]]) -> Plan:
        with cycles_left_alone():  # an item per backfill, and its parts; no cycles among them
            return compute_plan(
                manifests,
                live,
                mage_url=connection.url,
                allow_restart=allow_restart,
                runs=runs,
                mage_time=client.server_time(),
            )

    the_plan = plan_with(live)
    counts = client.run_counts(progress_wanted(the_plan))
    if counts_matter(the_plan, counts):
        the_plan = plan_with(with_run_counts(live, counts))
    return with_progress(the_plan, counts, runs)


def read_saved_plan(path: Path) -> Plan:
    """The plan saved in `path` by `plan --out`; UsageError when it cannot be read or is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"cannot read saved plan {path}: {reason}") from None
    return load_plan(text, str(path))


def use_color(stream: IO[str]) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def stdout_color() -> bool:
    return use_color(sys.stdout)
