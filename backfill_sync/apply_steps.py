"""The writes of one backfill, in the order apply carries them out, each relying only on what was read
just before it: creates that resolve a twin made at the same moment, starts that refuse to run dates
twice, deletes that cancel first.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from backfill_sync.apply_runs import RunWriter
from backfill_sync.compare import desired_fields, diff_fields, live_fields
from backfill_sync.errors import BackfillSyncError, StalePlanError, StartRefused
from backfill_sync.live import RunLister
from backfill_sync.models import (
    Action,
    BackfillFields,
    DesiredBackfill,
    LiveBackfill,
    StatusCommand,
)
from backfill_sync.plan import UNFINISHED_RUN_STATUSES
from backfill_sync.schedule import count_runs


class RunAccess(RunWriter, RunLister, Protocol):
    """What apply needs of a backfill's runs."""


class BackfillWriter(Protocol):
    """What apply needs from Mage (MageClient provides it; tests may fake it)."""

    @property
    def runs(self) -> RunAccess: ...

    def get_backfill(self, backfill_id: int) -> LiveBackfill | None: ...
    def list_backfills(self, pipeline_uuid: str | None = None) -> list[LiveBackfill]: ...
    def list_backfills_of(self, pipeline_uuids: Collection[str]) -> dict[str, list[LiveBackfill]]: ...
    def create_backfill(self, pipeline_uuid: str, fields: BackfillFields) -> LiveBackfill: ...
    def update_backfill(
        self, pipeline_uuid: str, backfill_id: int, fields: BackfillFields
    ) -> LiveBackfill: ...
    def set_status(
        self,
        pipeline_uuid: str,
        backfill_id: int,
        status: StatusCommand,
        *,
        known: LiveBackfill | None = None,
    ) -> LiveBackfill: ...
    def delete_backfill(self, pipeline_uuid: str, backfill_id: int) -> bool: ...
    def count_runs(self, backfill_id: int) -> int: ...


# The order a backfill's steps are carried out in: runs for new dates before the window that needs them
# is written (so a crash in between is repaired by the next apply), the status change last.
EXECUTION_ORDER: tuple[str, ...] = (
    "delete_twins",
    "create",
    "run",
    "retry",
    "cancel_runs",
    "update",
    "start",
    "restart",
    "cancel",
    "delete",
)


def delete_twins(action: Action, desired: DesiredBackfill, writer: BackfillWriter, steps: list[str]) -> None:
    """Delete each twin that is still a never-started backfill of the desired name; one that started
    or was renamed meanwhile is no twin any more, and the plan no longer holds."""
    for twin_id in action.ids:
        twin = writer.get_backfill(twin_id)
        if twin is None:
            continue  # gone already: deleted by whoever made it, or by another apply
        if twin.status is not None or twin.name != desired.name:
            raise StalePlanError(f"twin id {twin_id} changed since the plan was made; run plan again")
        writer.delete_backfill(desired.pipeline_uuid, twin_id)
        steps.append(f"deleted twin id {twin_id}")


def carry_out(
    action: Action,
    desired: DesiredBackfill,
    live: LiveBackfill | None,
    writer: BackfillWriter,
    steps: list[str],
) -> LiveBackfill | None:
    pipeline = desired.pipeline_uuid
    if action.kind == "create":
        return _create(desired, writer, steps)
    assert live is not None, f"{action.kind} needs a live backfill"
    if action.kind == "update":
        updated = writer.update_backfill(pipeline, live.id, fields_to_send(desired, live))
        steps.append("updated fields")
        return updated
    if action.kind in ("start", "restart"):
        try:
            started = writer.set_status(pipeline, live.id, "initial", known=live)
        except StartRefused as exc:
            # Started since it was read: the goal is reached, by someone else (another apply?).
            raise DoneElsewhere(
                f"done by another apply (or by hand) meanwhile, not started again: {exc}"
            ) from None
        steps.append(f"{action.kind}ed ({_runs(action)} runs)")
        if action.kind == "start" and desired.schedule is not None:
            _check_started_once(live.id, count_runs(desired.schedule), writer)
        return started
    if action.kind == "cancel":
        cancelled = writer.set_status(pipeline, live.id, "cancelled")
        steps.append("cancelled")
        return cancelled
    _delete(live, writer, steps)
    return None


def being_created_elsewhere(desired: DesiredBackfill, live: LiveBackfill) -> bool:
    """A never-started backfill of the name with no window yet: another apply's create, between its
    POST of the name and its PUT of the fields (an apply of this very plan would have finished both)."""
    return live.status is None and live.name == desired.name and live.start_datetime is None


def _create(desired: DesiredBackfill, writer: BackfillWriter, steps: list[str]) -> LiveBackfill:
    """POST the name; if another apply created the same backfill at the same moment, the lower id
    stays and the higher one is deleted by the apply that made it (while it is still only a name, never
    started); the winner's apply goes on alone. Only then are the fields written (Mage has no lock; this
    is the next best thing)."""
    pipeline = desired.pipeline_uuid
    created = writer.create_backfill(pipeline, BackfillFields(name=desired.name))
    steps.append(f"created id {created.id}")
    # Any backfill of the name with a lower id wins, started or not: the apply that made it may well
    # have started it by now.
    twins = [b for b in writer.list_backfills(pipeline) if b.name == desired.name]
    winner = min([*twins, created], key=lambda backfill: backfill.id)
    if winner.id != created.id:
        writer.delete_backfill(pipeline, created.id)
        steps.append(f"deleted it again (twin of id {winner.id})")
        raise DoneElsewhere(
            f"done by another apply: it created this backfill as id {winner.id} at the same moment; this "
            f"apply deleted its own twin id {created.id} and leaves the rest to that one"
        )
    fields = fields_to_send(desired, None)
    rest = BackfillFields(
        **{name: getattr(fields, name) for name in BackfillFields.__slots__ if name != "name"}
    )
    if rest.is_empty():
        return created
    return writer.update_backfill(pipeline, created.id, rest)


class DoneElsewhere(BackfillSyncError):
    """Another apply is doing this item at the same moment; this one stood down."""


def _check_started_once(backfill_id: int, dates: int, writer: BackfillWriter) -> None:
    """After a first start, the backfill must have exactly one run per date. More means another apply
    sent `initial` too, after Mage had moved the backfill on: every date runs twice. Said loudly."""
    found = writer.count_runs(backfill_id)
    if found > dates:
        raise DuplicateRuns(
            f"DUPLICATE RUNS: backfill {backfill_id} now has {found} runs for {dates} dates: another apply "
            "started it at the same moment, and dates run more than once. Cancel the extra runs in Mage; "
            "run applies of one repository one at a time (a CI concurrency group)."
        )


class DuplicateRuns(BackfillSyncError):
    """A date got more than one run from a start that should have made one each."""


def _delete(live: LiveBackfill, writer: BackfillWriter, steps: list[str]) -> None:
    """Cancel its runs if it has any running, then delete it. Its status is read again first: a plan
    made a moment ago saw it, but someone may have started it since, and deleting a running backfill
    would leave its runs running with nothing to cancel them by."""
    pipeline = live.pipeline_uuid or ""
    now = writer.get_backfill(live.id)
    if now is None:
        steps.append(f"id {live.id} already deleted (by another apply?)")
        return
    if now.status in UNFINISHED_RUN_STATUSES:
        writer.set_status(pipeline, live.id, "cancelled")
        steps.append("cancelled")
    if writer.delete_backfill(pipeline, live.id):
        steps.append(f"deleted id {live.id}")
    else:
        steps.append(f"id {live.id} already deleted (by another apply?)")


def fields_to_send(desired: DesiredBackfill, live: LiveBackfill | None) -> BackfillFields:
    """Every field for a create; only the fields that differ for an update ({} clears a JSON field)."""
    after = desired_fields(desired)
    if live is None:  # a create sends no empty JSON objects: a new backfill has none
        wanted = {name for name, value in after.items() if value != {}}
    else:
        wanted = {change.field for change in diff_fields(live_fields(live), after)}
    schedule = desired.schedule
    assert schedule is not None, "desired_fields has checked it: only absent entries lack a schedule"
    return BackfillFields(
        name=desired.name if "name" in wanted else None,
        start_datetime=schedule.start if "start_datetime" in wanted else None,
        end_datetime=schedule.end if "end_datetime" in wanted else None,
        interval_type=schedule.interval_type if "interval_type" in wanted else None,
        interval_units=schedule.interval_units if "interval_units" in wanted else None,
        variables=after["variables"] if "variables" in wanted else None,
        settings=after["settings"] if "settings" in wanted else None,
    )


def _runs(action: Action) -> str:
    return "?" if action.runs is None else f"+{action.runs}"
