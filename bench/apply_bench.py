"""Benchmark apply on the emulator: --parallelism 1 (one backfill at a time) vs the default and more.

Run: .venv/bin/python -m bench.apply_bench [--backfills 60] [--latency 0.02]
Every API request gets `--latency` seconds of delay (a stand-in for a network round trip; the emulator
itself answers in about a millisecond). Each backfill is created (POST, a listing of the pipeline for
twins, PUT of its fields) and started (a read of its run counts, PUT status, a count of its runs): six
round trips per item whatever the parallelism, plus one listing as apply begins; what parallelism buys
is overlap between items.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from backfill_sync.apply import DEFAULT_PARALLELISM, apply_plan
from backfill_sync.client import MageClient
from backfill_sync.live import read_live_state
from backfill_sync.models import DesiredBackfill, MageConnection, Manifest, Schedule
from backfill_sync.plan import compute_plan
from bench.emulator import control, emulator, timed

SCHEDULE = Schedule(datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 3, tzinfo=UTC), "day", 1)


def manifest_for(pipeline: str, count: int) -> Manifest:
    wanted = tuple(DesiredBackfill(pipeline, f"bench-{n}", SCHEDULE, state="started") for n in range(count))
    return Manifest(f"{pipeline}.yaml", pipeline, wanted)


def apply_seconds(url: str, pipeline: str, count: int, parallelism: int) -> float:
    connection = MageConnection(url=url, email="admin@admin.com", password="admin")
    with MageClient(connection, max_connections=parallelism) as api:
        wanted = manifest_for(pipeline, count)
        plan = compute_plan([wanted], read_live_state(api, [wanted], mage_url=url), mage_url=url)
        seconds = timed(lambda: apply_plan(plan, api, parallelism=parallelism))
        assert len(api.list_backfills(pipeline)) == count, "apply did not create every backfill"
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backfills", type=int, default=60)
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()
    levels = sorted({1, DEFAULT_PARALLELISM, 8})
    with emulator(*(f"bench_{level}" for level in levels)) as url:
        fault = {"method": "*", "path": "^/api/", "times": None, "kind": "latency", "seconds": args.latency}
        control(url, "POST", "/_emulator/faults", fault)
        results = {level: apply_seconds(url, f"bench_{level}", args.backfills, level) for level in levels}
    for level, seconds in results.items():
        print(f"apply of {args.backfills} create+start items, --parallelism {level}: {seconds:.2f}s")
    base = results[1]
    ratios = ", ".join(f"{level} vs 1: {base / results[level]:.1f}x" for level in levels if level != 1)
    print(f"speed-up {ratios}")


if __name__ == "__main__":
    main()
