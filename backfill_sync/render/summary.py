"""The plan summary and its line, run-count wording, and the symbols, styles and painter text shares."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from backfill_sync.models import Action, ActionKind, PlanItem

# ASCII on purpose: CI logs and Windows consoles mangle anything fancier.
SYMBOLS: dict[ActionKind, str] = {
    "delete_twins": "-",
    "create": "+",
    "update": "~",
    "start": ">",
    "restart": ">",
    "run": "+",
    "retry": ">",
    "cancel": "x",
    "cancel_runs": "x",
    "delete": "-",
}
BLOCKED_SYMBOL = "!"
WARNING_SYMBOL = "!"
UNCHANGED_SYMBOL = "="

_ANSI = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}
KIND_STYLES: dict[ActionKind, str] = {
    "delete_twins": "red",
    "create": "green",
    "update": "yellow",
    "start": "cyan",
    "restart": "magenta",
    "run": "cyan",
    "retry": "cyan",
    "cancel": "red",
    "cancel_runs": "red",
    "delete": "red",
}

Paint = Callable[[str, str], str]


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """How many actions of each kind will be carried out (blocked ones apart), and their run effects."""

    create: int = 0
    update: int = 0
    start: int = 0
    restart: int = 0
    retry: int = 0
    run: int = 0  # runs of the dates windows gained
    cancel: int = 0  # cancels of backfills and of the runs of dates windows lost
    delete: int = 0
    blocked: int = 0
    start_runs: int | None = 0  # runs set off by starts; None when some count is unknown
    restart_runs: int | None = 0
    retry_runs: int | None = 0
    new_date_runs: int | None = 0
    stop_runs: int | None = 0  # unfinished runs stopped by cancels and deletes

    @property
    def has_changes(self) -> bool:
        return any(
            (
                self.create,
                self.update,
                self.start,
                self.restart,
                self.retry,
                self.run,
                self.cancel,
                self.delete,
                self.blocked,
            )
        )

    @property
    def set_off_runs(self) -> int | None:
        """Every pipeline run the plan sets off, as the run budget counts them."""
        return _sum_counts((self.start_runs, self.restart_runs, self.retry_runs, self.new_date_runs))


def summarize_plan(items: Sequence[PlanItem]) -> PlanSummary:
    actions = [action for item in items for action in item.actions]
    active = [action for action in actions if not action.is_blocked]

    def count(*kinds: ActionKind) -> int:
        return sum(1 for action in active if action.kind in kinds)

    def runs(*kinds: ActionKind) -> int | None:
        return _sum_runs(action for action in active if action.kind in kinds)

    return PlanSummary(
        create=count("create"),
        update=count("update"),
        start=count("start"),
        restart=count("restart"),
        retry=count("retry"),
        run=count("run"),
        cancel=count("cancel", "cancel_runs"),
        delete=count("delete", "delete_twins"),
        blocked=len(actions) - len(active),
        start_runs=runs("start"),
        restart_runs=runs("restart"),
        retry_runs=runs("retry"),
        new_date_runs=runs("run"),
        stop_runs=runs("cancel", "cancel_runs", "delete"),
    )


def render_summary_line(summary: PlanSummary) -> str:
    """Always the same counts in the same order (scripts read it), or `No changes.`:

    `Plan: 1 to create, 2 to update, 1 to start, 0 to restart, 1 to retry, 0 to run new dates,
    0 to cancel, 0 to delete, 0 blocked; +747 runs, 0 stopped`
    """
    if not summary.has_changes:
        return "No changes."
    parts = [
        f"{summary.create} to create",
        f"{summary.update} to update",
        f"{summary.start} to start",
        f"{summary.restart} to restart",
        f"{summary.retry} to retry",
        f"{summary.run} to run new dates",
        f"{summary.cancel} to cancel",
        f"{summary.delete} to delete",
        f"{summary.blocked} blocked",
    ]
    effects = f"+{format_count(summary.set_off_runs)} runs, {format_count(summary.stop_runs)} stopped"
    return "Plan: " + ", ".join(parts) + "; " + effects


def painter(color: bool) -> Paint:
    def paint(text: str, style: str) -> str:
        if not color:
            return text
        return f"\x1b[{_ANSI[style]}m{text}\x1b[0m"

    return paint


def format_count(runs: int | None) -> str:
    return "?" if runs is None else str(runs)


def plus_runs(runs: int | None) -> str:
    return f"+{format_count(runs)} {runs_word(runs)}"


def runs_word(runs: int | None) -> str:
    return "run" if runs == 1 else "runs"


def _sum_runs(actions: Iterable[Action]) -> int | None:
    return _sum_counts(action.runs for action in actions)


def _sum_counts(counts: Iterable[int | None]) -> int | None:
    """The sum, or None (unknown) when any part is unknown."""
    total = 0
    for count in counts:
        if count is None:
            return None
        total += count
    return total
