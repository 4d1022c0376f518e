"""Benchmark plan and apply at scale against the emulator, each figure a ratio to a baseline of the same run.

Run: .venv/bin/python -m bench.scale_bench [--files 1000] [--per-file 10] [--latency 0.02] [--big 50000]

The case of issue 12: 1 000 manifests of 10 backfills each, Mage holding them all, 10 % differing (one
variable). Each `plan` and `apply` is a fresh process, as a user or CI runs it, against the emulator in
another process (its latency fault stands in for a network). Figures:

- plan, against a libyaml parse of the same files (in-process); and with every backfill running, when
  plan shows the progress of the 1 000 it acts on (a run-count read each);
- the requests plan sent, against the fewest that read the same at the same page size (and at the
  100-row pages the issue counted with);
- apply of the 1 000 field updates at --latency per request: its writes against K*L/P (K PUTs of L
  seconds, P at a time, P the default --parallelism) and against --parallelism 1, and the whole command;
- the requests a start of an existing backfill costs;
- peak RSS of a plan of --big backfills.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from backfill_sync.apply import DEFAULT_PARALLELISM, apply_plan, seen_by
from backfill_sync.cli.common import build_plan, load_selected_manifests
from backfill_sync.cli.options import DEFAULT_MAX_RUNS
from backfill_sync.client import MageClient
from backfill_sync.listing import PAGE_BYTES
from backfill_sync.models import MageConnection
from bench.emulator import control, emulator, timed

OWNER = {"MAGE_EMAIL": "admin@admin.com", "MAGE_PASSWORD": "admin"}
BACKFILL = """\
  - name: reload-{n}
    description: Re-load window {n} after the currency fix (PR {n})
    start_datetime: '2024-01-01T00:00:00Z'
    end_datetime: '2024-03-31T00:00:00Z'
    interval_type: day
    interval_units: 1
    variables: {{region: eu, batch: {n}, dry_run: false}}
"""
ISSUE_PAGE_ROWS = 100


def pipeline_uuid(index: int) -> str:
    return f"pipeline_{index:05d}"


def write_manifests(folder: Path, files: int, per_file: int, state: str | None) -> list[Path]:
    extra = f"    state: {state}\n" if state else ""
    paths = []
    for index in range(files):
        uuid = pipeline_uuid(index)
        entries = "".join(BACKFILL.format(n=n) + extra for n in range(per_file))
        path = folder / f"{uuid}.yaml"
        path.write_text(f"pipeline_uuid: {uuid}\nbackfills:\n{entries}", encoding="utf-8")
        paths.append(path)
    return paths


def live_rows(
    files: int, per_file: int, status: str | None, differing: int | None = 10
) -> list[dict[str, Any]]:
    """What Mage holds: the manifests' backfills, one in `differing` with another `batch` variable."""
    return [
        {
            "pipeline_uuid": pipeline_uuid(index),
            "name": f"reload-{n}",
            "start_datetime": "2024-01-01T00:00:00Z",
            "end_datetime": "2024-03-31T00:00:00Z",
            "interval_type": "day",
            "interval_units": 1,
            "variables": {
                "region": "eu",
                "batch": n if not differing or n % differing else -1,
                "dry_run": False,
            },
            "status": status,
        }
        for index in range(files)
        for n in range(per_file)
    ]


def seed(url: str, files: int, per_file: int, status: str | None, differing: int | None = 10) -> None:
    """A fresh Mage (its request log emptied too) holding the backfills."""
    control(url, "POST", "/_emulator/reset")
    rows = live_rows(files, per_file, status, differing)
    uuids = [pipeline_uuid(index) for index in range(files)]
    control(url, "POST", "/_emulator/seed", {"pipelines": uuids, "backfills": rows})


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    peak_rss_mb: float
    exit_code: int
    output: str


def run(command: Sequence[str], url: str) -> Run:
    """One fresh process: wall time, its own peak RSS, exit code, stderr."""
    env = {**os.environ, **OWNER, "MAGE_URL": url, "NO_COLOR": "1"}
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting
        err.seek(0)
        output = err.read().decode(errors="replace").strip()
    if process.returncode != 0:
        sys.exit(f"{' '.join(command[-3:])} failed:\n{output}")
    return Run(seconds, usage.ru_maxrss / 1024, process.returncode, output)


def cli() -> list[str]:
    script = Path(sys.executable).with_name("backfill-sync")
    return [str(script)] if script.exists() else [sys.executable, "-m", "backfill_sync"]


def requests_sent(url: str) -> Counter[str]:
    """The emulator's request log by kind: method, resource, and whether a listing or one row."""
    kinds: Counter[str] = Counter()
    for entry in control(url, "GET", "/_emulator/requests")["requests"]:
        parts = entry["path"].split("/")
        what = "list" if not parts[-1].isdigit() and parts[-1] in ("backfills", "pipelines") else "one"
        kinds[f"{entry['method']} {parts[2]} ({what})"] += 1
    return kinds


def fewest_pages(url: str) -> tuple[int, int]:
    """Pages of every backfill and every pipeline at PAGE_BYTES, if their sizes were known beforehand."""
    connection = MageConnection(url=url, email=OWNER["MAGE_EMAIL"], password=OWNER["MAGE_PASSWORD"])
    with MageClient(connection) as client:
        pages = []
        for path, key in (("/api/backfills", "backfills"), ("/api/pipelines", "pipelines")):
            rows = client.session.call("GET", path, params={"_limit": 10**7})[key]
            pages.append(math.ceil(len(json.dumps(rows)) / PAGE_BYTES))
    return pages[0], pages[1]


@contextmanager
def latency(url: str, seconds: float) -> Iterator[None]:
    fault = {"method": "*", "path": "^/api/", "times": None, "kind": "latency", "seconds": seconds}
    control(url, "POST", "/_emulator/faults", fault)
    try:
        yield
    finally:
        control(url, "DELETE", "/_emulator/faults")


def apply_seconds(url: str, folder: Path, parallelism: int) -> tuple[float, int]:
    """Plan in-process, then time apply's writes alone, with `parallelism` (as `--parallelism`)."""
    connection = MageConnection(url=url, email=OWNER["MAGE_EMAIL"], password=OWNER["MAGE_PASSWORD"])
    manifests = load_selected_manifests((str(folder),), max_runs=DEFAULT_MAX_RUNS, includes=(), excludes=())
    with MageClient(connection, max_connections=parallelism) as client:
        plan = build_plan(client, manifests, connection, allow_restart=False)
        writes = sum(1 for item in plan.items() if item.has_changes())
        seconds = timed(lambda: apply_plan(plan, client, parallelism=parallelism, current=seen_by(plan)))
    return seconds, writes


def libyaml_parse(paths: Sequence[Path]) -> None:
    for path in paths:
        yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def line(what: str, value: str, ratio: str, goal: str, met: bool) -> str:
    return f"{what:<40}{value:>9}  {ratio:<40} goal {goal}: {'met' if met else 'NOT met'}"


def total(kinds: Counter[str]) -> int:
    return sum(count for kind, count in kinds.items() if not kind.startswith("POST sessions"))


class Bench:
    def __init__(self, url: str, root: Path, args: argparse.Namespace) -> None:
        self.url, self.root = url, root
        self.files, self.per_file, self.latency = args.files, args.per_file, args.latency
        self.backfills = self.files * self.per_file

    def folder(self, name: str, state: str | None, files: int | None = None, per: int | None = None) -> Path:
        folder = self.root / name
        folder.mkdir()
        write_manifests(folder, files or self.files, per or self.per_file, state)
        return folder

    def plans(self, parse: float) -> None:
        quiet, started = self.root / "quiet", self.folder("started", "started")
        seed(self.url, self.files, self.per_file, None)
        plan = run([*cli(), "plan", str(quiet)], self.url)
        sent = requests_sent(self.url)
        backfill_pages, pipeline_pages = fewest_pages(self.url)
        seed(self.url, self.files, self.per_file, "running")
        running = run([*cli(), "plan", str(started)], self.url)
        running_sent = requests_sent(self.url)
        print(f"plan, {self.files} manifests / {self.backfills} backfills, 10 % differing:")
        ratio = f"{plan.seconds / parse:.1f}x the libyaml parse"
        print(line("  plan", f"{plan.seconds:.2f} s", ratio, "<= 2 s", plan.seconds <= 2))
        ratio = f"{running.seconds / parse:.1f}x the libyaml parse"
        goal = running.seconds <= 2.5
        print(line("  same, every backfill running", f"{running.seconds:.2f} s", ratio, "<= 2.5 s", goal))
        fewest = backfill_pages + pipeline_pages
        issue = math.ceil(self.backfills / ISSUE_PAGE_ROWS) + math.ceil(self.files / ISSUE_PAGE_ROWS)
        ratio = f"{total(sent) / fewest:.2f}x the fewest ({fewest}; {issue} at 100-row pages)"
        print(
            line("  requests of plan (login aside)", str(total(sent)), ratio, "fewest", total(sent) <= fewest)
        )
        counts = running_sent["GET backfills (one)"]
        least = fewest + counts
        ratio = f"{total(running_sent) / least:.2f}x the fewest ({fewest} + {counts} shown)"
        met = total(running_sent) <= least
        print(line("  requests, every backfill running", str(total(running_sent)), ratio, "fewest", met))
        print(f"    sent: {dict(sent)}; running: {dict(running_sent)}")

    def apply(self) -> None:
        folder = self.root / "quiet"
        results = {}
        for level in (DEFAULT_PARALLELISM, 1):
            seed(self.url, self.files, self.per_file, None)
            with latency(self.url, self.latency):
                results[level] = apply_seconds(self.url, folder, level)
        seed(self.url, self.files, self.per_file, None)
        with latency(self.url, self.latency):
            whole = run([*cli(), "apply", "--auto-approve", str(folder)], self.url)
        sent = requests_sent(self.url)
        seconds, writes = results[DEFAULT_PARALLELISM]
        bound = writes * self.latency / DEFAULT_PARALLELISM
        per_request = f"{self.latency * 1000:.0f} ms per request"
        print(f"apply, {writes} field updates at {per_request} (P = {DEFAULT_PARALLELISM}):")
        print(
            line(
                "  its writes",
                f"{seconds:.2f} s",
                f"{seconds / bound:.2f}x K*L/P",
                "<= 1.5x",
                seconds <= 1.5 * bound,
            )
        )
        one = results[1][0]
        speed = f"{one:.1f} s with --parallelism 1: {one / seconds:.1f}x faster"
        print(line("  same, default --parallelism", f"{seconds:.2f} s", speed, ">= 8x", one / seconds >= 8))
        puts = sent["PUT pipelines (one)"]
        plan_part = total(sent) - puts
        print(f"  the whole command: {whole.seconds:.2f} s; requests: its plan's {plan_part} + {puts} PUTs")

    def starts(self) -> None:
        files, per = 10, 10
        folder = self.folder("starts", "started", files, per)
        seed(self.url, files, per, None, differing=None)
        run([*cli(), "plan", str(folder)], self.url)
        planned = total(requests_sent(self.url))
        seed(self.url, files, per, None, differing=None)
        run([*cli(), "apply", "--auto-approve", str(folder)], self.url)
        sent = requests_sent(self.url)
        each = (total(sent) - planned) / (files * per)
        reads = sent["GET backfills (one)"] / (files * per)
        print(
            f"start of an existing backfill: {each:.0f} requests each ({reads:.0f} re-read of its run counts"
        )
        print("  right before `initial`, the PUT, and the count of its runs after a first start that")
        verdict = "met" if each <= 3 else "NOT met"
        print(f"  catches a second set (DUPLICATE RUNS)); goal 2 + that deliberate check: {verdict}")

    def memory(self, big: int) -> None:
        files = big // self.per_file
        folder = self.folder("big", None, files, self.per_file)
        seed(self.url, files, self.per_file, None)
        plan = run([*cli(), "plan", str(folder)], self.url)
        version = run([*cli(), "--version"], self.url)
        ratio = f"{plan.peak_rss_mb / version.peak_rss_mb:.1f}x the RSS of --version"
        rss = f"{plan.peak_rss_mb:.0f} MB"
        print(line(f"peak RSS, plan of {big} backfills", rss, ratio, "<= 200 MB", plan.peak_rss_mb <= 200))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--per-file", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--big", type=int, default=50_000, help="backfills of the peak-RSS plan")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, shared with other work; Python {sys.version.split()[0]}.")
    print("Seconds vary with the machine's load: compare the ratios, all measured in this one run.")
    with tempfile.TemporaryDirectory() as root, emulator() as url:
        bench = Bench(url, Path(root), args)
        quiet = bench.folder("quiet", None)
        paths = sorted(quiet.glob("*.yaml"))
        parse = min(timed(lambda: libyaml_parse(paths)) for _ in range(3))
        print(f"baseline: libyaml parse of the {args.files} manifests (in-process) {parse:.3f} s")
        bench.plans(parse)
        bench.apply()
        bench.starts()
        bench.memory(args.big)


if __name__ == "__main__":
    main()
