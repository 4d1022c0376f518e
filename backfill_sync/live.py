"""Read the live state a plan needs: the managed pipelines' backfills, with run counts where they matter."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from backfill_sync.errors import ApiError, PlanError, PlanProblem
from backfill_sync.models import LiveBackfill, Manifest, RunCounts
from backfill_sync.plan import UNFINISHED_RUN_STATUSES
from backfill_sync.plan_runs import RunNeed
from backfill_sync.runs import Run, latest_runs
from backfill_sync.wire import is_unreadable_row

FOREIGN_SHOWN = 3  # rows of another pipeline an error names before "and N more"


class PipelineLister(Protocol):
    def pipeline_exists(self, pipeline_uuid: str) -> bool: ...
    def list_backfills(self, pipeline_uuid: str | None = None) -> list[LiveBackfill]: ...


class RunLister(Protocol):
    def runs_of(self, backfill_ids: Sequence[int]) -> dict[int, list[Run]]: ...
    def list_runs(self, backfill_id: int, *, status: str | None = None, full: bool = False) -> list[Run]: ...


class LiveReader(PipelineLister, Protocol):
    def run_counts(self, backfills: Sequence[LiveBackfill]) -> dict[int, RunCounts]: ...


def read_live_state(
    reader: LiveReader, manifests: Sequence[Manifest], *, mage_url: str
) -> dict[str, list[LiveBackfill]]:
    """Every live backfill of each manifest's pipeline; unfinished ones carry run counts."""
    check_pipelines_exist(reader, manifests, mage_url=mage_url)
    live = {m.pipeline_uuid: list_pipeline(reader, m, mage_url) for m in manifests}
    unfinished = [b for rows in live.values() for b in rows if b.status in UNFINISHED_RUN_STATUSES]
    # Only rows with a sane schedule: run counts of a row with interval_units <= 0 hang Mage (§6).
    counts = reader.run_counts([b for b in unfinished if b.schedule() is not None])
    return {uuid: [_with_counts(b, counts.get(b.id)) for b in rows] for uuid, rows in live.items()}


def check_pipelines_exist(reader: PipelineLister, manifests: Sequence[Manifest], *, mage_url: str) -> None:
    """An unknown pipeline lists as empty in Mage: say so instead of planning creates that would fail."""
    missing = [m for m in manifests if not reader.pipeline_exists(m.pipeline_uuid)]
    if missing:
        raise PlanError(
            *(
                PlanProblem(
                    f"Mage at {mage_url} has no pipeline {m.pipeline_uuid!r}: create the pipeline in Mage "
                    "first, or fix `pipeline_uuid` and the file name",
                    file=m.path,
                )
                for m in missing
            )
        )


def list_pipeline(reader: PipelineLister, manifest: Manifest, mage_url: str) -> list[LiveBackfill]:
    """The live backfills of a manifest's pipeline; a row Mage cannot read back is named plainly, and a
    row of another pipeline in the listing is refused (planned, it would become an update, a start or a
    delete of a backfill this manifest does not own)."""
    try:
        rows = reader.list_backfills(manifest.pipeline_uuid)
    except ApiError as exc:
        if not is_unreadable_row(exc):
            raise
        raise PlanError(
            PlanProblem(
                f"Mage at {mage_url} cannot list the backfills of pipeline "
                f"{manifest.pipeline_uuid!r}: one of its rows holds a value Mage cannot read back "
                f"({exc.detail}). Mage's API cannot repair it; fix the row in Mage's database "
                "(its interval_type, for example set to DAY), then plan again",
                file=manifest.path,
            )
        ) from None
    foreign = [row for row in rows if row.pipeline_uuid != manifest.pipeline_uuid]
    if foreign:
        shown = ", ".join(
            f"id {row.id} {row.name!r} of pipeline {row.pipeline_uuid!r}" for row in foreign[:FOREIGN_SHOWN]
        )
        more = f" and {len(foreign) - FOREIGN_SHOWN} more" if len(foreign) > FOREIGN_SHOWN else ""
        raise PlanError(
            f"{manifest.path}: Mage at {mage_url} listed backfills of another pipeline as backfills of "
            f"{manifest.pipeline_uuid!r}: {shown}{more}. Nothing was planned for this pipeline; "
            "is MAGE_URL a Mage server, and does it filter listings by pipeline_uuid?"
        )
    return rows


def _with_counts(backfill: LiveBackfill, counts: RunCounts | None) -> LiveBackfill:
    if counts is None:
        return backfill
    return dataclasses.replace(
        backfill, total_run_count=counts.total, run_status_counts=dict(counts.by_status)
    )


def read_run_lists(
    reader: RunLister, wanted: Mapping[int, RunNeed], cancelled: Collection[int] = ()
) -> dict[int, list[Run]]:
    """The slim run lists a plan asked for; for retries, with when each failed latest run failed (the
    slim list lacks `updated_at`), from the full lists of only those runs. `cancelled`: backfills whose
    cancelled runs are not retried, so their times are not needed."""
    runs = reader.runs_of(sorted(wanted))
    for backfill_id, need in wanted.items():
        if need == "retry":
            runs[backfill_id] = _with_failure_times(
                reader, backfill_id, runs[backfill_id], backfill_id in cancelled
            )
    return runs


def _with_failure_times(reader: RunLister, backfill_id: int, runs: list[Run], cancelled: bool) -> list[Run]:
    statuses = {run.status for run in latest_runs(runs).values()}
    timed: dict[int, Run] = {}
    if "failed" in statuses:
        timed.update(
            (run.id, run) for run in reader.list_runs(backfill_id, status="last_run_failed", full=True)
        )
    if "cancelled" in statuses and not cancelled:
        timed.update((run.id, run) for run in reader.list_runs(backfill_id, status="cancelled", full=True))
    return [timed.get(run.id, run) for run in runs]
