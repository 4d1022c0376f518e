"""Benchmark apply against a real Mage: update 100 of 200 backfills, against Mage's own time for 100 PUTs.

Run: make bench-real-mage (starts a throw-away Mage 0.9.80 as `make test-real-mage` does, then this), or
.venv/bin/python -m bench.real_mage with BFS_REAL_MAGE_URL set (the owner must be admin@admin.com/admin
unless BFS_REAL_MAGE_OWNER_EMAIL/_PASSWORD say otherwise).

The baseline is the server's own time: the same 100 field PUTs sent one after another on one kept-alive
connection, nothing else. Ours is a fresh `backfill-sync apply --auto-approve` process, plan included,
with a token (a password login costs Mage about a second more, printed apart). Real Mage answers about
one request at a time, so only fewer requests can help: ours are one listing, one pipeline read and the
100 PUTs. The machine is shared: baseline and ours alternate, and the best of each is compared (the
least disturbed run of each; the medians are printed too).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from backfill_sync.client import MageClient
from backfill_sync.models import MageConnection
from bench.emulator import timed

PIPELINE = "bfs_bench"
BACKFILLS = 200
UPDATES = 100
ROUNDS = 5
WINDOW = {
    "start_datetime": "2024-01-01T00:00:00Z",
    "end_datetime": "2024-01-31T00:00:00Z",
    "interval_type": "day",
    "interval_units": 1,
}


def owner() -> MageConnection:
    return MageConnection(
        url=os.environ["BFS_REAL_MAGE_URL"],
        email=os.environ.get("BFS_REAL_MAGE_OWNER_EMAIL", "admin@admin.com"),
        password=os.environ.get("BFS_REAL_MAGE_OWNER_PASSWORD", "admin"),
    )


def prepare(mage: MageClient) -> dict[str, int]:
    """The pipeline and its 200 backfills (the owner may send every field in the create)."""
    if not mage.pipeline_exists(PIPELINE):
        mage.session.call("POST", "/api/pipelines", body={"pipeline": {"name": PIPELINE, "type": "python"}})
    have = {row.name: row.id for row in mage.list_backfills(PIPELINE) if row.name}
    path = f"/api/pipelines/{PIPELINE}/backfills"
    for n in range(BACKFILLS):
        if f"b{n}" not in have:
            body = {"backfill": {"name": f"b{n}", **WINDOW, "variables": {"n": n}}}
            have[f"b{n}"] = int(
                mage.session.call("POST", path, body=body, repeatable=False)["backfill"]["id"]
            )
    return have


def put_variables(mage: MageClient, ids: dict[str, int], changed: bool) -> None:
    for n in range(UPDATES):
        variables: dict[str, Any] = {"n": n, "x": 1} if changed else {"n": n}
        path = f"/api/pipelines/{PIPELINE}/backfills/{ids[f'b{n}']}"
        mage.session.call("PUT", path, body={"backfill": {"variables": variables}})


def write_manifest(folder: Path) -> None:
    entries = "".join(
        f"  - name: b{n}\n    start_datetime: '2024-01-01'\n    end_datetime: '2024-01-31'\n"
        f"    interval_type: day\n    interval_units: 1\n"
        f"    variables: {{n: {n}{', x: 1' if n < UPDATES else ''}}}\n"
        for n in range(BACKFILLS)
    )
    (folder / f"{PIPELINE}.yaml").write_text(f"pipeline_uuid: {PIPELINE}\nbackfills:\n{entries}", "utf-8")


def command(*args: str, env: dict[str, str]) -> float:
    script = Path(sys.executable).with_name("backfill-sync")
    start = time.perf_counter()
    done = subprocess.run([str(script), *args], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"backfill-sync {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def main() -> None:
    if not os.environ.get("BFS_REAL_MAGE_URL"):
        sys.exit("set BFS_REAL_MAGE_URL (make bench-real-mage starts a Mage and sets it)")
    connection = owner()
    with MageClient(connection, max_connections=1) as mage, tempfile.TemporaryDirectory() as root:
        ids = prepare(mage)
        token = mage.session.auth_headers()["Authorization"].removeprefix("Bearer ")
        write_manifest(Path(root))
        base = {k: v for k, v in os.environ.items() if not k.startswith("MAGE_")}
        with_token = {**base, "MAGE_URL": connection.url, "MAGE_TOKEN": token, "NO_COLOR": "1"}
        servers, ours = [], []
        for _ in range(ROUNDS):
            put_variables(mage, ids, changed=False)
            servers.append(timed(lambda: put_variables(mage, ids, changed=True)))
            put_variables(mage, ids, changed=False)
            ours.append(command("apply", "--auto-approve", root, env=with_token))
        command("plan", "--detailed-exitcode", root, env=with_token)  # exit 0: nothing left to do
        logins = []
        for _ in range(ROUNDS):
            with MageClient(connection) as fresh:
                logins.append(timed(fresh.session.auth_headers))
    ratio = min(ours) / min(servers)
    print(f"real Mage at {connection.url}, update {UPDATES} of {BACKFILLS} backfills ({ROUNDS} rounds):")
    print(f"  Mage's own time for {UPDATES} PUTs one after another: {_seconds(servers)}")
    print(f"  backfill-sync apply (fresh process, plan included): {_seconds(ours)}")
    median = statistics.median(ours) / statistics.median(servers)
    verdict = "met" if ratio <= 1.2 else "NOT met"
    print(
        f"  best against best {ratio:.2f}x Mage's own time (medians: {median:.2f}x); goal <= 1.2x: {verdict}"
    )
    print(f"  with --email/--password instead of a token, Mage's login adds {min(logins):.2f} s")


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in values) + " s"


if __name__ == "__main__":
    main()
