"""Benchmark MageClient on the emulator: concurrent vs sequential run counts, portable vs one-POST creates.

Run: .venv/bin/python -m bench.client_bench [--backfills 200] [--latency 0.02]
A latency fault on every detail read stands in for a network round trip (the emulator answers in ~1 ms).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from backfill_sync.client import MageClient
from backfill_sync.models import BackfillFields, MageConnection
from bench.emulator import control, emulator, timed

PIPELINE = "bench_pipeline"
FIELDS = BackfillFields(
    start_datetime=datetime(2024, 1, 1, tzinfo=UTC),
    end_datetime=datetime(2024, 1, 31, tzinfo=UTC),
    interval_type="day",
    interval_units=1,
)


def bench_run_counts(url: str, count: int, latency: float) -> None:
    connection = MageConnection(url=url, email="admin@admin.com", password="admin")
    with MageClient(connection) as api:
        made = [
            api.create_backfill(PIPELINE, BackfillFields(name=f"bench-{n}", **_schedule()))
            for n in range(count)
        ]
    control(url, "POST", "/_emulator/faults", _latency_fault(latency, count * 4))
    results: dict[int, float] = {}
    for workers in (1, 4, 8):
        with MageClient(connection, max_connections=workers) as pool:
            results[workers] = timed(lambda: pool.run_counts(made))
    control(url, "DELETE", "/_emulator/faults")
    for workers, seconds in results.items():
        print(f"run_counts of {count} backfills, {workers} connection(s): {seconds:.2f}s")
    print(f"speed-up 4 vs 1: {results[1] / results[4]:.1f}x; 8 vs 1: {results[1] / results[8]:.1f}x")


def bench_creates(url: str, count: int, latency: float) -> None:
    connection = MageConnection(url=url, email="admin@admin.com", password="admin")
    control(url, "POST", "/_emulator/faults", {**_latency_fault(latency, count * 4), "path": "/backfills"})
    with MageClient(connection) as api:
        portable = timed(
            lambda: [
                api.create_backfill(PIPELINE, BackfillFields(name=f"p-{n}", **_schedule()))
                for n in range(count)
            ]
        )
        body = {"name": "one-post", **{key: str(value) for key, value in _schedule().items()}}
        single = timed(
            lambda: [
                api.session.call(
                    "POST", f"/api/pipelines/{PIPELINE}/backfills", body={"backfill": body}, repeatable=False
                )
                for _ in range(count)
            ]
        )
    control(url, "DELETE", "/_emulator/faults")
    print(f"{count} creates: portable POST+PUT {portable:.2f}s, owner-only single POST {single:.2f}s")


def _latency_fault(seconds: float, times: int) -> dict[str, Any]:
    return {
        "method": "",
        "path": r"^/api/backfills/\d+$",
        "times": times,
        "kind": "latency",
        "seconds": seconds,
    }


def _schedule() -> dict[str, Any]:
    return {
        name: getattr(FIELDS, name)
        for name in ("start_datetime", "end_datetime", "interval_type", "interval_units")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backfills", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()
    with emulator(PIPELINE) as url:
        bench_run_counts(url, args.backfills, args.latency)
        bench_creates(url, 50, args.latency)


if __name__ == "__main__":
    main()
