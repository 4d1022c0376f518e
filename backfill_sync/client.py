"""MageClient: Mage's backfill API with its traps handled (paging, read-back after lost answers).

HTTP itself (auth, retries, error bodies) is `transport.MageSession`; the runs a backfill creates have
their own small client, `MageClient.runs` (run_client.py), over the same session.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from backfill_sync.errors import ApiError, MageError, StartRefused, UnknownOutcome
from backfill_sync.listing import Lister
from backfill_sync.models import (
    BackfillFields,
    JsonObject,
    LiveBackfill,
    MageConnection,
    RunCounts,
    StatusCommand,
)
from backfill_sync.run_client import CONFIRM_SECONDS, RunClient, confirm_attempts
from backfill_sync.transport import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_RETRIES,
    RETRY_AFTER_CAP,
    Backoff,
    MageSession,
    Unanswered,
)
from backfill_sync.wire import (
    backfill_from_wire,
    fields_to_wire,
    listing_count,
    member,
    run_counts_of,
)

__all__ = ["RETRY_AFTER_CAP", "Backoff", "MageClient"]


class MageClient:
    """Mage's backfill API with its traps handled; one keep-alive connection pool, closed on exit."""

    def __init__(
        self,
        connection: MageConnection,
        *,
        timeout: float | None = None,
        retries: int = DEFAULT_RETRIES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        backoff: Backoff | None = None,
        page_size: int | None = None,
        session: MageSession | None = None,
        confirm_seconds: float = CONFIRM_SECONDS,
    ) -> None:
        """`page_size`: rows per page of a listing; by default as many as fit in listing.PAGE_BYTES."""
        if page_size is not None and page_size < 1:
            raise ValueError("page_size must be >= 1: Mage pages `_limit` <= 0 forever")
        self._connection = connection
        self._session = session or MageSession(
            connection, timeout=timeout, retries=retries, max_connections=max_connections, backoff=backoff
        )
        self._confirm_seconds = confirm_seconds
        self.runs = RunClient(self._session, confirm_seconds=confirm_seconds)
        self._lists = Lister(self._session, page_size)

    @property
    def session(self) -> MageSession:
        """The HTTP session underneath, for the few callers that send a request of their own."""
        return self._session

    def __repr__(self) -> str:
        return f"MageClient(url={self._connection.url!r})"

    def __enter__(self) -> MageClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def server_time(self) -> datetime | None:
        """Mage's clock as its latest answer gave it (None before any answer, or without a Date)."""
        return self._session.server_time()

    # -- reads ---------------------------------------------------------------------------------------

    def list_backfills(self, pipeline_uuid: str | None = None) -> list[LiveBackfill]:
        """Every backfill (of one pipeline), each once, re-listing when rows moved between pages."""
        return self._lists.backfills(pipeline_uuid)

    def list_backfills_of(self, pipeline_uuids: Collection[str]) -> dict[str, list[LiveBackfill]]:
        """The backfills of each pipeline, from one listing of all of them or one per pipeline, whichever
        takes fewer requests."""
        return self._lists.backfills_of(pipeline_uuids)

    def pipeline_exists(self, pipeline_uuid: str) -> bool:
        """Whether Mage knows the pipeline (an unknown one lists as [] with no error, so ask)."""
        return self._lists.pipeline_exists(pipeline_uuid)

    def missing_pipelines(self, pipeline_uuids: Collection[str]) -> list[str]:
        """Those of the pipelines Mage does not have, in few requests (its pipelines listing, mostly)."""
        return self._lists.missing_pipelines(pipeline_uuids)

    def list_pipeline_uuids(self) -> list[str]:
        """The uuids of every pipeline Mage has."""
        return self._lists.pipeline_uuids()

    def get_backfill(self, backfill_id: int, *, include_run_count: bool = False) -> LiveBackfill | None:
        """One backfill, None when Mage has no such id; run counts only when its schedule is sane
        (asking them of a row with units <= 0 hangs Mage, §6 hazard 2)."""
        try:
            live = self._read_backfill(backfill_id, include_run_count=False)
            if include_run_count and live.schedule() is not None:
                return self._read_backfill(backfill_id, include_run_count=True)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise
        return live

    def poll_backfills(self, backfill_ids: Sequence[int]) -> dict[int, LiveBackfill | None]:
        """Several backfills with run counts, one request each, a few at a time (None: deleted).

        Only for backfills already read with a sane schedule: asking run counts of a row with
        interval_units <= 0 hangs Mage (§6 hazard 2), and only someone writing such a row between two
        polls could make one of these insane; backfill-sync never writes one.
        """
        found = self._session.map(self._read_counts, list(backfill_ids))
        return dict(zip(backfill_ids, found, strict=True))

    def run_counts(self, backfills: Iterable[LiveBackfill]) -> dict[int, RunCounts]:
        """Run counts of the given backfills whose schedule is sane, fetched a few at a time."""
        sane = [backfill.id for backfill in backfills if backfill.schedule() is not None]
        details = self._session.map(
            lambda backfill_id: self._read_backfill(backfill_id, include_run_count=True), sane
        )
        counts = {live.id: run_counts_of(live) for live in details}
        return {backfill_id: value for backfill_id, value in counts.items() if value is not None}

    # -- writes --------------------------------------------------------------------------------------

    def create_backfill(self, pipeline_uuid: str, fields: BackfillFields) -> LiveBackfill:
        """Create with the name only, then PUT the rest: the one flow every role may use (§4.1).

        The owner could send everything in one POST: one round trip instead of two per create
        (bench/client_bench.py), but it needs to know the role (a raw token does not say) and a second
        code path, for a call that happens once per new backfill. Not worth it.
        """
        if not fields.name:
            raise MageError("a backfill needs a name to be created")
        created = self._post_name(pipeline_uuid, fields.name)
        rest = BackfillFields(**{**_as_dict(fields), "name": None})
        if rest.is_empty():
            return created
        try:
            return self.update_backfill(pipeline_uuid, created.id, rest)
        except MageError as exc:
            raise MageError(
                f"backfill {fields.name!r} was created in {pipeline_uuid} as id {created.id}, "
                f"but setting its fields failed: {exc}"
            ) from exc

    def update_backfill(self, pipeline_uuid: str, backfill_id: int, fields: BackfillFields) -> LiveBackfill:
        """A plain field PUT (never with status): repeating it is harmless, so it is retried."""
        body = {"backfill": fields_to_wire(fields)}
        return self._session.request(
            "PUT", _backfill_path(pipeline_uuid, backfill_id), _backfill_in, body=body
        )

    def set_status(
        self,
        pipeline_uuid: str,
        backfill_id: int,
        status: StatusCommand,
        *,
        known: LiveBackfill | None = None,
    ) -> LiveBackfill:
        """Start (`initial`) or cancel, alone in its PUT; never repeated blindly (it starts runs).

        Right before a start the backfill is read again, with its run counts: `initial` is sent only to a
        backfill never started, or whose runs are all finished. Sent while runs still run, Mage creates a
        second full set and every date runs twice (mage-runs-api.md §6.9). `known`: the backfill as the
        caller last read it; when its schedule was sane, that read asks for the counts at once.
        """
        before = self._startable(backfill_id, known) if status == "initial" else None
        body = {"backfill": {"status": status}}
        path = _backfill_path(pipeline_uuid, backfill_id)
        try:
            return self._session.request("PUT", path, _backfill_in, body=body, repeatable=False)
        except Unanswered as exc:
            return self._confirm_status(backfill_id, status, before, f"PUT {path} got no answer ({exc})")
        except ApiError as exc:
            # Cancelling a never-started backfill answers a 500 but saves the status (§6 hazard 5).
            if exc.code != 500 or status != "cancelled":
                raise
            return self._confirm_status(backfill_id, status, before, str(exc))

    def delete_backfill(self, pipeline_uuid: str, backfill_id: int) -> bool:
        """Delete; False when it was already gone. After a lost answer, read back and delete again
        only if it is still there."""
        path = _backfill_path(pipeline_uuid, backfill_id)
        try:
            self._session.call("DELETE", path, repeatable=False)
        except Unanswered:
            if self.get_backfill(backfill_id) is None:
                return True  # the lost answer was ours: it is gone
            self._session.call("DELETE", path)
        except ApiError as exc:
            if exc.code == 404:
                return False
            raise
        return True

    # -- write helpers -------------------------------------------------------------------------------

    def _startable(self, backfill_id: int, known: LiveBackfill | None) -> LiveBackfill:
        if known is not None and known.schedule() is not None:
            before = self._read_counts(backfill_id)
        else:
            before = self.get_backfill(backfill_id, include_run_count=True)
        if before is None:
            raise MageError(f"backfill {backfill_id} no longer exists in Mage; nothing was started")
        counts = before.run_status_counts or {}
        unfinished = counts.get("initial", 0) + counts.get("running", 0)
        if before.status is not None and (
            unfinished or (before.status in ("initial", "running") and not counts)
        ):
            raise StartRefused(
                f"backfill {backfill_id} is {before.status} with {unfinished} runs not finished; starting it "
                "now would run every date twice"
            )
        return before

    def _post_name(self, pipeline_uuid: str, name: str) -> LiveBackfill:
        path = f"/api/pipelines/{_segment(pipeline_uuid)}/backfills"
        try:
            body = {"backfill": {"name": name}}
            return self._session.request("POST", path, _backfill_in, body=body, repeatable=False)
        except Unanswered as exc:
            return self._find_created(pipeline_uuid, name, f"POST {path} got no answer ({exc})")

    def _find_created(self, pipeline_uuid: str, name: str, what: str) -> LiveBackfill:
        """After a create got no answer: look for it, for long enough that a slow Mage still working on
        it has finished (the read-backs queue behind it); the newest never-started one of that name."""
        for _ in confirm_attempts(self._confirm_seconds, self._session.backoff):
            matches = [live for live in self.list_backfills(pipeline_uuid) if live.name == name]
            fresh = [live for live in matches if live.status is None]
            if fresh:
                return max(fresh, key=lambda live: live.id)
        raise UnknownOutcome(
            f"{what}; after {self._confirm_seconds:.0f} s Mage has no new backfill named {name!r} "
            f"in pipeline {pipeline_uuid}. If one appears later, the next plan removes the twin; "
            "run plan again."
        )

    def _confirm_status(
        self, backfill_id: int, status: StatusCommand, before: LiveBackfill | None, what: str
    ) -> LiveBackfill:
        """After a status change got no answer: read back until it shows, or long enough that a slow
        Mage has surely handled it; never send it again (a second start runs every date twice)."""
        after: LiveBackfill | None = None
        for _ in confirm_attempts(self._confirm_seconds, self._session.backoff):
            after = self.get_backfill(backfill_id)
            if after is None:
                raise UnknownOutcome(f"{what}; backfill {backfill_id} no longer exists in Mage")
            if _status_reached(status, before, after):
                return after
        shown = "unknown" if after is None else repr(after.status)
        raise UnknownOutcome(
            f"{what}; after {self._confirm_seconds:.0f} s backfill {backfill_id} still has status "
            f"{shown}, not {status!r}. Check backfill {backfill_id} and its runs in Mage before trying again."
        )

    def count_runs(self, backfill_id: int) -> int:
        """How many runs the backfill has, every run of every date (a one-row page says the total)."""
        params = {"backfill_id": int(backfill_id), "_limit": 1, "_format": "with_basic_details"}
        return self._session.request("GET", "/api/pipeline_runs", listing_count, params=params)

    # -- reading helpers -----------------------------------------------------------------------------

    def _read_counts(self, backfill_id: int) -> LiveBackfill | None:
        """One read with run counts, of a backfill read before with a sane schedule (see poll_backfills);
        None when it is gone."""
        try:
            return self._read_backfill(backfill_id, include_run_count=True)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    def _read_backfill(self, backfill_id: int, *, include_run_count: bool) -> LiveBackfill:
        params = {"include_run_count": "true"} if include_run_count else None
        path = f"/api/backfills/{int(backfill_id)}"
        return self._session.request("GET", path, _backfill_in, params=params)


def _backfill_path(pipeline_uuid: str, backfill_id: int) -> str:
    return f"/api/pipelines/{_segment(pipeline_uuid)}/backfills/{int(backfill_id)}"


def _segment(text: str) -> str:
    return quote(text, safe="")


def _backfill_in(answer: JsonObject) -> LiveBackfill:
    return backfill_from_wire(member(answer, "backfill"))


def _as_dict(fields: BackfillFields) -> dict[str, Any]:
    return {name: getattr(fields, name) for name in BackfillFields.__slots__}


def _status_reached(status: StatusCommand, before: LiveBackfill | None, after: LiveBackfill) -> bool:
    if status == "cancelled":
        return after.status == "cancelled"
    # A start sets started_at anew; the scheduler may already have moved the status on.
    started_anew = after.started_at is not None and (before is None or after.started_at != before.started_at)
    return after.status is not None and started_anew
