"""Benchmark validate and start-up against what they cannot beat: a bare libyaml parse and `python -c pass`.

Run: .venv/bin/python -m bench.validate_bench [--files 1000] [--per-file 10] [--repeat 3]
Writes the manifests to a temporary folder. Every command runs as a fresh process (start-up included,
as a user or pre-commit sees it), best of --repeat; each figure is printed as a ratio to a baseline
measured in the same run, so the numbers carry over between machines better than seconds do.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.emulator import timed

BACKFILL = """\
  - name: reload-{n}
    description: Re-load window {n} after the currency fix (PR {n})
    previous_names: [old-reload-{n}]
    start_datetime: '2024-01-01T00:00:00Z'
    end_datetime: 2024-03-31
    interval_type: day
    interval_units: 1
    variables:
      region: eu
      batch: {n}
      dry_run: false
    state: started
"""


def write_manifests(folder: Path, files: int, per_file: int) -> list[Path]:
    """`files` manifests of `per_file` backfills each, every one valid."""
    paths = []
    for index in range(files):
        uuid = f"pipeline_{index:05d}"
        entries = "\n".join(BACKFILL.format(n=n) for n in range(per_file))
        text = f"# yaml-language-server: $schema=../schema.json\npipeline_uuid: {uuid}\nbackfills:\n{entries}"
        path = folder / f"{uuid}.yaml"
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    peak_rss_mb: float
    exit_code: int


def run(command: Sequence[str]) -> Run:
    """One fresh process: wall time, its own peak RSS (not its siblings'), exit code."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting
    return Run(seconds, usage.ru_maxrss / 1024, process.returncode)


def best(command: Sequence[str], repeat: int) -> Run:
    runs = [run(command) for _ in range(repeat)]
    return min(runs, key=lambda found: found.seconds)


def libyaml_parse(paths: Sequence[Path]) -> None:
    for path in paths:
        yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


def cli() -> list[str]:
    script = Path(sys.executable).with_name("backfill-sync")
    return [str(script)] if script.exists() else [sys.executable, "-m", "backfill_sync"]


def report(what: str, seconds: float, baseline: float, against: str, met: bool, goal: str) -> str:
    verdict = "met" if met else "NOT met"
    ratio = f"{seconds / baseline:.1f}x {against}"
    return f"{what:<22}{seconds:7.3f} s  {ratio:<42} goal {goal}: {verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--per-file", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        paths = write_manifests(Path(folder), args.files, args.per_file)
        empty = best([sys.executable, "-c", "pass"], args.repeat).seconds
        parse = min(timed(lambda: libyaml_parse(paths)) for _ in range(args.repeat))
        shown = best([*cli(), "--help"], args.repeat)
        version = best([*cli(), "--version"], args.repeat)
        one = best([*cli(), "validate", str(paths[0])], args.repeat)
        every = best([*cli(), "validate", folder], args.repeat)
    if {shown.exit_code, version.exit_code, one.exit_code, every.exit_code} != {0}:
        sys.exit("a command failed: the benchmark's manifests are all valid")
    files = f"{args.files} files"
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, libyaml {yaml.__with_libyaml__}"
    )
    print(f"baselines: python -c pass {empty:.3f} s, libyaml parse of the {files} (in-process) {parse:.3f} s")
    bare = "python -c pass"
    print(
        report("--help", shown.seconds, empty, bare, shown.seconds <= min(4 * empty, 0.15), "<= 4x, 0.15 s")
    )
    print(
        report(
            "--version",
            version.seconds,
            empty,
            bare,
            version.seconds <= min(4 * empty, 0.15),
            "<= 4x, 0.15 s",
        )
    )
    print(report("validate 1 file", one.seconds, empty, bare, one.seconds <= 0.35, "<= 0.35 s"))
    same = "a libyaml parse of the same files"
    print(report(f"validate {files}", every.seconds, parse, same, every.seconds <= 1.5, "<= 1.5 s"))
    backfills = args.files * args.per_file
    print(f"validate {files} ({backfills} backfills): peak RSS {every.peak_rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
