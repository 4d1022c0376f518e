"""Problems for CI to show on a manifest's lines: from validation, planning and apply, as one value type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from backfill_sync.errors import BackfillSyncError, ManifestError, PlanError
from backfill_sync.models import ApplyResult, Outcome, Plan, PlanItem, SourceLocation, Violation

Severity = Literal["error", "warning"]
Check = Literal["validate", "plan", "apply"]

# What apply reports as a problem, and how loud: failed and stale items need someone now; a blocked
# one waits for an opt-in; a skipped one was never begun (interrupted) and a rerun finishes it.
APPLY_SEVERITY: dict[Outcome, Severity] = {
    "failed": "error",
    "stale": "error",
    "blocked": "warning",
    "skipped": "warning",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing CI should point at: which step found it, where (file, or file:line:col), and how bad.

    `subject` names what it is about in words that do not move when other lines of the file do (a field
    path, a backfill), so a report can tell the same problem from one run to the next.
    """

    check: Check
    message: str
    file: str | None = None
    line: int | None = None
    col: int | None = None
    severity: Severity = "error"
    title: str | None = None
    subject: str = ""


def violation_problems(violations: Sequence[Violation]) -> list[Problem]:
    return [
        Problem(
            "validate",
            f"{violation.path}: {violation.message}" if violation.path else violation.message,
            violation.file,
            violation.line,
            violation.col,
            subject=violation.path,
        )
        for violation in violations
    ]


def plan_error_problems(error: PlanError) -> list[Problem]:
    return [
        Problem("plan", problem.message, problem.file, problem.line, problem.col, subject=problem.message)
        for problem in error.problems
    ]


def problems_of(error: BackfillSyncError) -> list[Problem]:
    """The located problems an error carries; [] for errors about no place in a manifest."""
    if isinstance(error, ManifestError):
        return violation_problems(error.violations)
    if isinstance(error, PlanError):
        return plan_error_problems(error)
    return []


def run_budget_problems(plan: Plan, max_total_runs: int) -> list[Problem]:
    """When the plan starts more runs than allowed: one problem on each entry that starts any."""
    starting = [(item, runs) for item in plan.items() if (runs := started_runs(item))]
    total = sum(runs for _, runs in starting)
    if total <= max_total_runs:
        return []
    return [
        _at(
            item.desired.source,
            "plan",
            f"{item.pipeline_uuid}/{item.name} starts {runs} pipeline runs; the plan starts {total} in all, "
            f"more than --max-total-runs {max_total_runs}",
            title="backfill-sync: over the run budget",
            subject=f"{item.pipeline_uuid}/{item.name}: run budget",
        )
        for item, runs in starting
    ]


def started_runs(item: PlanItem) -> int:
    """Pipeline runs the item sets off (starts, restarts, retries, new dates; not blocked ones), counted
    as apply's run budget counts them."""
    # Here, not at the top: validate imports this module and has no use for apply's dependencies.
    from backfill_sync.apply import RUN_SETTING_KINDS

    return sum(
        action.runs or 0
        for action in item.actions
        if action.kind in RUN_SETTING_KINDS and not action.is_blocked
    )


def apply_problems(plan: Plan, result: ApplyResult) -> list[Problem]:
    """A problem per item apply did not carry out, on its manifest entry when the plan knows where."""
    sources = {(item.pipeline_uuid, item.name): item.desired.source for item in plan.items()}
    problems = []
    for item in result.items:
        severity = APPLY_SEVERITY.get(item.outcome)
        if severity is None:
            continue
        problems.append(
            _at(
                sources.get((item.pipeline_uuid, item.name)),
                "apply",
                f"{item.pipeline_uuid}/{item.name}: {item.outcome}: {item.message or 'no reason given'}",
                severity=severity,
                title=f"backfill-sync apply: {item.outcome}",
                subject=f"{item.pipeline_uuid}/{item.name}: {item.outcome}",
            )
        )
    return problems


def _at(
    source: SourceLocation | None,
    check: Check,
    message: str,
    *,
    severity: Severity = "error",
    title: str | None = None,
    subject: str = "",
) -> Problem:
    if source is None:
        return Problem(check, message, severity=severity, title=title, subject=subject)
    return Problem(check, message, source.file, source.line, source.col, severity, title, subject)
