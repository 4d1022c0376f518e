"""RunClient: the pipeline runs a backfill created, over the same Mage session as the backfills.

Runs are listed by backfill id, never with `pipeline_uuid` (it turns on Mage's "retries grouping", which
breaks paging, mage-runs-api.md §6.8), in id order so that runs created while the list is read land on
its last page instead of shifting the others; slim (`_format=with_basic_details`) unless the caller
needs `updated_at`. A failed run is about 11 KB in full, so full lists use small pages.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from backfill_sync.errors import ApiError, MageError, UnknownOutcome
from backfill_sync.listing import list_pages
from backfill_sync.models import JsonObject
from backfill_sync.runs import Run, Trigger
from backfill_sync.transport import Backoff, MageSession, Unanswered
from backfill_sync.wire import member, run_from_wire, trigger_from_wire

SLIM_PAGE_SIZE = 500
FULL_PAGE_SIZE = 20
LIST_ATTEMPTS = 4
# How long a create that got no answer is looked for before its outcome is called unknown: a slow
# server may still be working on it (the read-backs go through the same queue as the create).
CONFIRM_SECONDS = 30.0
CONFIRM_PAUSE = 2.0


class RunClient:
    def __init__(self, session: MageSession, *, confirm_seconds: float = CONFIRM_SECONDS) -> None:
        self._session = session
        self._confirm_seconds = confirm_seconds

    # -- reads ---------------------------------------------------------------------------------------

    def list_runs(self, backfill_id: int, *, status: str | None = None, full: bool = False) -> list[Run]:
        """Every run of the backfill (with `status`: only those; `last_run_failed`: the failed latest
        runs). Slim unless `full`, which adds `updated_at`."""
        params: dict[str, Any] = {"backfill_id": int(backfill_id), "order_by[]": "id asc"}
        if status is not None:
            params["status"] = status
        if not full:
            params["_format"] = "with_basic_details"
        page_size = FULL_PAGE_SIZE if full else SLIM_PAGE_SIZE
        for _ in range(LIST_ATTEMPTS):
            items, totals = list_pages(
                self._session, "/api/pipeline_runs", "pipeline_runs", params, page_size, run_from_wire
            )
            runs = {run.id: run for run in items}
            if totals == {len(runs)}:
                return sorted(runs.values(), key=lambda run: run.id)
        raise MageError(
            f"the runs of backfill {backfill_id} kept changing while being listed ({LIST_ATTEMPTS} tries); "
            "try again"
        )

    def runs_of(self, backfill_ids: Sequence[int]) -> dict[int, list[Run]]:
        """The slim run lists of several backfills, a few at a time."""
        lists = self._session.map(self.list_runs, list(backfill_ids))
        return dict(zip(backfill_ids, lists, strict=True))

    def get_run(self, run_id: int) -> Run | None:
        try:
            return self._session.request(
                "GET", f"/api/pipeline_runs/{int(run_id)}", _run_in, params={"_format": "with_basic_details"}
            )
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def get_trigger(self, trigger_id: int) -> Trigger | None:
        try:
            return self._session.request("GET", f"/api/pipeline_schedules/{int(trigger_id)}", _trigger_in)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def server_version(self) -> str | None:
        """Mage's version (`projects[0].version`); None when it does not say (mage-runs-api.md §4.14)."""
        answer = self._session.call("GET", "/api/projects")
        projects = answer.get("projects")
        first = projects[0] if isinstance(projects, list) and projects else None
        version = first.get("version") if isinstance(first, dict) else None
        return version if isinstance(version, str) else None

    # -- writes --------------------------------------------------------------------------------------

    def retry_run(self, run_id: int) -> Run:
        """`retry_blocks`: the run keeps its id and date and runs its unfinished blocks again. Mage
        executes a run once however often it is asked, but a lost answer is still read back first."""
        path = f"/api/pipeline_runs/{int(run_id)}"
        body = {"pipeline_run": {"pipeline_run_action": "retry_blocks"}}
        try:
            return self._session.request("PUT", path, _run_in, body=body, repeatable=False)
        except Unanswered as exc:
            found = self.get_run(run_id)
            if found is not None and found.status not in ("failed", "cancelled"):
                return found
            raise UnknownOutcome(
                f"PUT {path} (retry) got no answer ({exc}); run {run_id} is now "
                f"{'gone' if found is None else found.status}. Run plan again to see what is left to retry."
            ) from None

    def cancel_run(self, run_id: int) -> Run:
        """Cancel one run; cancelling a finished run is a no-op in Mage, so this is safe to repeat."""
        body = {"pipeline_run": {"status": "cancelled"}}
        return self._session.request("PUT", f"/api/pipeline_runs/{int(run_id)}", _run_in, body=body)

    def create_run(
        self, trigger_id: int, backfill_id: int, execution_date: datetime, variables: JsonObject
    ) -> Run:
        """A run for one date, on the backfill's trigger and counted in its run_status_counts. Mage
        checks neither the window nor duplicates, so a lost answer is looked for, never re-sent."""
        path = f"/api/pipeline_schedules/{int(trigger_id)}/pipeline_runs"
        wanted = execution_date.replace(tzinfo=None).isoformat()
        body = {
            "pipeline_run": {
                "execution_date": wanted,
                "backfill_id": int(backfill_id),
                "variables": variables,
            }
        }
        try:
            return self._session.request("POST", path, _run_in, body=body, repeatable=False)
        except Unanswered as exc:
            return self._confirm_created(backfill_id, execution_date, f"POST {path} got no answer ({exc})")

    def activate_trigger(self, trigger_id: int) -> None:
        """Runs on a trigger start only while it is active; a completed backfill's trigger is not."""
        body = {"pipeline_schedule": {"status": "active"}}
        self._session.call("PUT", f"/api/pipeline_schedules/{int(trigger_id)}", body=body)

    def _confirm_created(self, backfill_id: int, execution_date: datetime, what: str) -> Run:
        for _ in confirm_attempts(self._confirm_seconds, self._session.backoff):
            found = [run for run in self.list_runs(backfill_id) if run.execution_date == execution_date]
            if found:
                return max(found, key=lambda run: run.id)
        raise UnknownOutcome(
            f"{what}; after {self._confirm_seconds:.0f} s backfill {backfill_id} still has no run "
            f"for {execution_date:%Y-%m-%d %H:%M:%S}. Mage may still create it: check its runs, "
            "then run plan again (it creates only dates that still have no run)."
        )


def confirm_attempts(seconds: float, backoff: Backoff) -> Iterator[int]:
    """Read-backs after an unanswered write: one now, then one every CONFIRM_PAUSE seconds until
    `seconds` have passed; counted, not clocked, so a test's backoff that does not sleep ends at once."""
    attempts = 1 + max(math.ceil(seconds / CONFIRM_PAUSE), 0)
    for attempt in range(attempts):
        if attempt:
            backoff.sleep(CONFIRM_PAUSE)
        yield attempt


def _run_in(answer: JsonObject) -> Run:
    return run_from_wire(member(answer, "pipeline_run"))


def _trigger_in(answer: JsonObject) -> Trigger:
    return trigger_from_wire(member(answer, "pipeline_schedule"))
