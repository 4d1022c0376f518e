"""The problems a command leaves for CI: GitHub annotations, and a GitLab Code Quality report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import click

from backfill_sync.cli.report import echo_annotations
from backfill_sync.codequality import render_codequality
from backfill_sync.errors import BackfillSyncError, UsageError
from backfill_sync.problems import Problem, problems_of

codequality_option = click.option(
    "--codequality",
    "codequality",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Also write every problem found as a GitLab Code Quality report (JSON) to FILE, even when the "
    "command fails; publish it with `artifacts: reports: codequality`.",
)


class CiReport:
    """The problems one command meets, for CI.

    Under GitHub Actions each is annotated as it is added. With a Code Quality file asked for, the
    report is written when the command ends, failed or not (`with CiReport(path) as report:`), and also
    holds the problems of the error that ended it (the CLI's error handler annotates those).
    """

    def __init__(self, codequality: str | None) -> None:
        self.path = None if codequality is None else Path(codequality)
        self.problems: list[Problem] = []

    def add(self, problems: Sequence[Problem], *, annotate: bool = True) -> None:
        self.problems.extend(problems)
        if annotate:
            echo_annotations(problems, err=True)

    def __enter__(self) -> CiReport:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if isinstance(error, BackfillSyncError):
            self.add(problems_of(error), annotate=False)
        if self.path is None:
            return
        try:
            self.path.write_text(render_codequality(self.problems, root=Path.cwd()), encoding="utf-8")
        except OSError as exc:
            message = f"cannot write the Code Quality report {self.path}: {exc.strerror}"
            if error is None:
                raise UsageError(message) from None
            click.echo(f"Warning: {message}", err=True)
