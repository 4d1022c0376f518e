"""How violations are shown: text lines, a JSON list, and GitHub Actions `::error` annotations."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import click

from backfill_sync.models import Violation


def in_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    return (os.environ if environ is None else environ).get("GITHUB_ACTIONS") == "true"


def violations_json(violations: Sequence[Violation]) -> str:
    """A JSON list of {file, line, col, path, message}; `[]` when there is nothing to report."""
    rows = [
        {"file": v.file, "line": v.line, "col": v.col, "path": v.path, "message": v.message}
        for v in violations
    ]
    return json.dumps(rows, indent=2, ensure_ascii=False)


def github_annotation(violation: Violation) -> str:
    """`::error file=…,line=…,col=…::message`, escaped as GitHub's workflow commands require."""
    properties = f"file={_escape_property(violation.file)},line={violation.line},col={violation.col}"
    where = f"{violation.path}: " if violation.path else ""
    return f"::error {properties}::{_escape_data(where + violation.message)}"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def echo_annotations(violations: Sequence[Violation], *, err: bool = False) -> None:
    """Print annotations when running under GitHub Actions, so problems show on the pull request's diff."""
    if in_github_actions():
        for violation in violations:
            click.echo(github_annotation(violation), err=err)
