"""Benchmark compute_plan on a large pipeline against the plain approach: a linear match and one DeepDiff
of the whole comparable dicts per backfill.

Run: .venv/bin/python -m bench.plan_bench [--backfills 3000]
Pure CPU, no server: every tenth backfill differs in one variable.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime

from deepdiff import DeepDiff

from backfill_sync.compare import desired_fields, live_fields
from backfill_sync.models import DesiredBackfill, LiveBackfill, Manifest, Schedule
from backfill_sync.plan import compute_plan
from bench.emulator import timed

START, END = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 31, tzinfo=UTC)


def wanted(count: int) -> Manifest:
    schedule = Schedule(START, END, "day", 1)
    backfills = tuple(
        DesiredBackfill("p", f"b{n}", schedule, variables={"region": "eu", "n": n}) for n in range(count)
    )
    return Manifest("p.yaml", "p", backfills)


def existing(count: int) -> list[LiveBackfill]:
    return [
        LiveBackfill(
            n + 1, "p", f"b{n}", START, END, "day", 1, {"region": "eu", "n": n if n % 10 else -1}, None, None
        )
        for n in range(count)
    ]


def plain_diff(manifest: Manifest, live: Sequence[LiveBackfill]) -> int:
    """The baseline: find each backfill by scanning, then DeepDiff both sides whole."""
    changed = 0
    for desired in manifest.backfills:
        match = next((backfill for backfill in live if backfill.name == desired.name), None)
        if match is None or DeepDiff(live_fields(match), desired_fields(desired)):
            changed += 1
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backfills", type=int, default=3000)
    count = parser.parse_args().backfills
    manifest, live = wanted(count), existing(count)
    ours = timed(lambda: compute_plan([manifest], {"p": live}, mage_url="http://mage"))
    baseline = timed(lambda: plain_diff(manifest, live))
    print(
        f"{count} backfills, 10% changed: compute_plan {ours:.2f}s, linear match + DeepDiff {baseline:.2f}s"
    )
    print(f"compute_plan is {baseline / ours:.1f}x faster")


if __name__ == "__main__":
    main()
