"""How problems are shown: text lines, a JSON list, and GitHub Actions `::error`/`::warning` annotations."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from backfill_sync.safe_text import json_safe, printable, printable_lines

if TYPE_CHECKING:  # models is slow to import, and --help and --version never report a violation
    from backfill_sync.models import Violation
    from backfill_sync.problems import Problem

# GitHub's limit for one step's $GITHUB_STEP_SUMMARY, in bytes.
STEP_SUMMARY_LIMIT = 1024 * 1024


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get("GITHUB_ACTIONS") == "true"


def violations_json(violations: Sequence[Violation]) -> str:
    """A JSON list of {file, line, col, path, message}; `[]` when there is nothing to report."""
    rows = [
        {"file": v.file, "line": v.line, "col": v.col, "path": v.path, "message": v.message}
        for v in violations
    ]
    return json_safe(json.dumps(rows, indent=2, ensure_ascii=False))


def github_annotation(item: Violation | Problem) -> str:
    """`::error file=…,line=…,col=…::message` (or `::warning`), escaped as GitHub's workflow commands
    require; a problem without a line is annotated on its file, one without a file on the run. Text
    from Mage or from manifests is made printable first, so it cannot start a command of its own."""
    from backfill_sync.problems import Problem, violation_problems  # only once there is something to say

    problem = item if isinstance(item, Problem) else violation_problems([item])[0]
    properties = [
        f"{name}={_escape_property(str(value))}"
        for name, value in (
            ("file", problem.file),
            ("line", problem.line),
            ("col", problem.col),
            ("title", problem.title),
        )
        if value is not None
    ]
    head = f"::{problem.severity}" + (f" {','.join(properties)}" if properties else "")
    return f"{head}::{_escape_data(printable_lines(problem.message))}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(printable(text)).replace(":", "%3A").replace(",", "%2C")


def echo_annotations(items: Sequence[Violation | Problem], *, err: bool = False) -> None:
    """Print annotations when running under GitHub Actions, so problems show on the pull request's diff."""
    if in_github_actions():
        for item in items:
            click.echo(github_annotation(item), err=err)


def annotate(level: str, file: str | None, line: int | None, message: str) -> str:
    """`::error file=…,line=…::message` (or ::warning), escaped as GitHub's workflow commands require."""
    where = ""
    if file is not None:
        where = f" file={_escape_property(file)}" + (f",line={line}" if line is not None else "")
    return f"::{level}{where}::{_escape_data(printable_lines(message))}"


def append_step_summary(build: Callable[[int], str], what: str) -> None:
    """Under GitHub Actions, append Markdown to the job's summary page.

    GitHub drops a step's whole summary when the file passes 1 MiB, so `build(budget)` gets the bytes
    that earlier writes in the same step left, and its text is left out (with a warning) when it does
    not fit even so.
    """
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not in_github_actions() or not summary:
        return
    path = Path(summary)
    try:
        budget = STEP_SUMMARY_LIMIT - (path.stat().st_size if path.exists() else 0)
        data = build(max(budget, 0)).encode("utf-8")
        if len(data) > budget:
            click.echo(f"Warning: the job summary is full; the {what} was not added to it", err=True)
            return
        with path.open("ab") as handle:
            handle.write(data)
    except OSError as exc:  # the command itself succeeded; a missing summary page is not worth failing it
        click.echo(f"Warning: cannot append to GITHUB_STEP_SUMMARY {summary}: {exc.strerror}", err=True)


def echo_error_annotation(message: str) -> None:
    """Under GitHub Actions, an error about no place in particular, so it shows on the run's page."""
    if in_github_actions():
        click.echo(f"::error title=backfill-sync::{_escape_data(message)}", err=True)
