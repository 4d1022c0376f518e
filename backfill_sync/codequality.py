"""Problems as a GitLab Code Quality report: the JSON array a job publishes as `reports: codequality`.

GitLab reads a subset of the Code Climate issue format: description, check_name, fingerprint,
severity (info, minor, major, critical, blocker), location.path (relative to the repository) and
location.lines.begin. It merges the reports of every job of a pipeline, shows the findings the merge
request adds or fixes in its widget (compared by fingerprint with the target branch's report), and on
Ultimate also on the diff's lines.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from backfill_sync.models import JsonObject
from backfill_sync.problems import Problem, Severity

SEVERITIES: dict[Severity, str] = {"error": "major", "warning": "minor"}


def render_codequality(problems: Sequence[Problem], *, root: Path) -> str:
    """The report for the problems that name a file (GitLab can place no other); paths relative to root."""
    issues = [codequality_issue(problem, root) for problem in problems if problem.file is not None]
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"


def codequality_issue(problem: Problem, root: Path) -> JsonObject:
    assert problem.file is not None, "only problems in a file can be placed"
    path = repository_path(problem.file, root)
    return {
        "description": problem.message,
        "check_name": f"backfill-sync-{problem.check}",
        "fingerprint": _fingerprint(problem, path),
        "severity": SEVERITIES[problem.severity],
        "location": {"path": path, "lines": {"begin": problem.line or 1}},
    }


def repository_path(file: str, root: Path) -> str:
    """`file` as a relative POSIX path from the repository root (the job's working folder)."""
    path = Path(file)
    if path.is_absolute():
        try:
            path = path.relative_to(root)
        except ValueError:
            path = Path(os.path.relpath(path, root))
    return str(PurePosixPath(*path.parts)) if path.parts else "."


def _fingerprint(problem: Problem, path: str) -> str:
    # Not the line: an edit above a problem must not make GitLab see it as fixed and found anew.
    # The message is in it, so two different problems of one field stay two findings.
    key = "\0".join((problem.check, path, problem.subject, problem.message))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
