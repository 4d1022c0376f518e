"""The plan summary and its line, run-count wording, and the symbols, styles and painter text shares."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from backfill_sync.models import Action, ActionKind, PlanItem

# ASCII on purpose: CI logs and Windows consoles mangle anything fancier.
SYMBOLS: dict[ActionKind, str] = {
    "create": "+",
    "update": "~",
    "start": ">",
    "cancel": "x",
    "restart": ">",
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
    "create": "green",
    "update": "yellow",
    "start": "cyan",
    "cancel": "red",
    "restart": "magenta",
    "delete": "red",
}

Paint = Callable[[str, str], str]


@dataclass(frozen=True, slots=True)
class PlanSummary:
    """How many actions of each kind will be carried out (blocked ones apart), and their run effects."""

    create: int = 0
    update: int = 0
    start: int = 0
    cancel: int = 0
    restart: int = 0
    delete: int = 0
    blocked: int = 0
    start_runs: int | None = 0  # runs set off by starts; None when some count is unknown
    restart_runs: int | None = 0
    stop_runs: int | None = 0  # unfinished runs stopped by cancels and deletes

    @property
    def has_changes(self) -> bool:
        return any(
            (self.create, self.update, self.start, self.cancel, self.restart, self.delete, self.blocked)
        )


def summarize_plan(items: Sequence[PlanItem]) -> PlanSummary:
    actions = [action for item in items for action in item.actions]
    active = [action for action in actions if not action.is_blocked]

    def count(kind: ActionKind) -> int:
        return sum(1 for action in active if action.kind == kind)

    def runs(*kinds: ActionKind) -> int | None:
        return _sum_runs(action for action in active if action.kind in kinds)

    return PlanSummary(
        create=count("create"),
        update=count("update"),
        start=count("start"),
        cancel=count("cancel"),
        restart=count("restart"),
        delete=count("delete"),
        blocked=len(actions) - len(active),
        start_runs=runs("start"),
        restart_runs=runs("restart"),
        stop_runs=runs("cancel", "delete"),
    )


def render_summary_line(summary: PlanSummary) -> str:
    """`Plan: 1 to create, 2 to update, 1 to start (+744 runs), 0 to cancel`, or `No changes.`"""
    if not summary.has_changes:
        return "No changes."
    parts = [
        f"{summary.create} to create",
        f"{summary.update} to update",
        f"{summary.start} to start" + (f" ({plus_runs(summary.start_runs)})" if summary.start else ""),
        f"{summary.cancel} to cancel",
    ]
    if summary.restart:
        parts.append(f"{summary.restart} to restart ({plus_runs(summary.restart_runs)})")
    if summary.delete:
        parts.append(f"{summary.delete} to delete")
    if summary.blocked:
        parts.append(f"{summary.blocked} blocked")
    return "Plan: " + ", ".join(parts)


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
    total = 0
    for action in actions:
        if action.runs is None:
            return None
        total += action.runs
    return total
