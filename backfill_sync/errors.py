"""The one error family: every failure a user can act on is a BackfillSyncError."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backfill_sync.models import SourceLocation, Violation


class BackfillSyncError(Exception):
    """Base of every error the CLI reports as `Error: <message>` with exit code 1 (no traceback)."""


class UsageError(BackfillSyncError):
    """The command line or its environment asks for something that cannot be done."""


class ManifestError(BackfillSyncError):
    """One or more manifests are invalid; `violations` holds every problem found, not only the first."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations = tuple(violations)
        count = len(self.violations)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} found in the manifests")


class MageError(BackfillSyncError):
    """Talking to Mage failed: unreachable, unauthorised, or an error answer."""


class ConnectionFailed(MageError):
    """Mage could not be reached (refused, reset, timed out) after the allowed retries."""


class AuthError(MageError):
    """Mage refused the credentials (wrong api key, bad or expired token, failed login)."""


class ApiError(MageError):
    """Mage answered with an error: an HTTP error status or an `{"error": ...}` body (often HTTP 200).

    Only the short facts are kept (code, type, the exception line); Mage's 28-line tracebacks never are.
    """

    def __init__(
        self,
        *,
        method: str,
        path: str,
        code: int,
        error_type: str | None,
        detail: str,
    ) -> None:
        self.method = method
        self.path = path
        self.code = code
        self.error_type = error_type
        self.detail = detail
        kind = f" {error_type}" if error_type else ""
        super().__init__(f"Mage answered {method} {path} with error {code}{kind}: {detail}")


class MalformedAnswer(MageError):
    """Mage's answer cannot be read: not JSON, the wrong shape, nested too deeply, or larger than the cap.

    The message names the request and what was wrong with the answer.
    """


class UnknownOutcome(MageError):
    """A write was sent but no answer came back; it may or may not have happened in Mage."""


class StartRefused(MageError):
    """A start that would run dates twice: the backfill has runs that are not finished."""


@dataclass(frozen=True, slots=True)
class PlanProblem:
    """One reason a plan cannot be made, and the manifest place it is about: a file, or file:line:col.

    Kept apart from the message so that CI can annotate the place (GitHub `::error file=,line=`,
    GitLab Code Quality) without parsing text.
    """

    message: str
    file: str | None = None
    line: int | None = None
    col: int | None = None

    @classmethod
    def at(cls, source: SourceLocation | None, message: str, *, file: str | None = None) -> PlanProblem:
        """At a manifest entry's location when known, else in `file` (when given)."""
        if source is None:
            return cls(message, file)
        return cls(message, source.file, source.line, source.col)

    def __str__(self) -> str:
        where = ":".join(str(part) for part in (self.file, self.line, self.col) if part is not None)
        return f"{where}: {self.message}" if where else self.message


class PlanError(BackfillSyncError):
    """The manifests and live state cannot be reconciled as asked (ambiguous match, foreign id, ...).

    `problems` holds each reason with its place; the message lists them one per line.
    """

    def __init__(self, *problems: PlanProblem | str) -> None:
        self.problems = tuple(PlanProblem(p) if isinstance(p, str) else p for p in problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


class StalePlanError(BackfillSyncError):
    """A saved plan no longer matches Mage (other URL, or a backfill changed since it was made)."""
