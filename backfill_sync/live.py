"""Read the live state a plan needs: the managed pipelines' backfills; runs and run counts where needed."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from backfill_sync.errors import ApiError, PlanError, PlanProblem
from backfill_sync.gc_pause import cycles_left_alone
from backfill_sync.models import LiveBackfill, Manifest, RunCounts
from backfill_sync.plan_runs import RunNeed
from backfill_sync.runs import Run, latest_runs
from backfill_sync.wire import is_unreadable_row

FOREIGN_SHOWN = 3  # rows of another pipeline an error names before "and N more"


class PipelineLister(Protocol):
    def missing_pipelines(self, pipeline_uuids: Collection[str]) -> list[str]: ...
    def list_backfills(self, pipeline_uuid: str | None = None) -> list[LiveBackfill]: ...
    def list_backfills_of(self, pipeline_uuids: Collection[str]) -> dict[str, list[LiveBackfill]]: ...


class RunLister(Protocol):
    def runs_of(self, backfill_ids: Sequence[int]) -> dict[int, list[Run]]: ...
    def list_runs(self, backfill_id: int, *, status: str | None = None, full: bool = False) -> list[Run]: ...


class LiveReader(PipelineLister, Protocol):
    def run_counts(self, backfills: Sequence[LiveBackfill]) -> dict[int, RunCounts]: ...


def read_live_state(
    reader: PipelineLister, manifests: Sequence[Manifest], *, mage_url: str
) -> dict[str, list[LiveBackfill]]:
    """Every live backfill of each manifest's pipeline, without run counts (`read_run_counts` asks for
    those of the backfills a plan shows). Which pipelines exist and their backfills are two listings,
    read side by side. Tens of thousands of rows: the cycle collector is paused while they are read
    (it spent a quarter of the reading walking them and the loaded manifests)."""
    with cycles_left_alone(), ThreadPoolExecutor(max_workers=2) as pool:
        missing = pool.submit(reader.missing_pipelines, [m.pipeline_uuid for m in manifests])
        live = pool.submit(list_live, reader, manifests, mage_url)
        check_pipelines_exist(manifests, missing.result(), mage_url=mage_url)
        return live.result()


def check_pipelines_exist(manifests: Sequence[Manifest], missing: Collection[str], *, mage_url: str) -> None:
    """An unknown pipeline lists as empty in Mage: say so instead of planning creates that would fail."""
    unknown = [m for m in manifests if m.pipeline_uuid in missing]
    if unknown:
        raise PlanError(
            *(
                PlanProblem(
                    f"Mage at {mage_url} has no pipeline {m.pipeline_uuid!r}: create the pipeline in Mage "
                    "first, or fix `pipeline_uuid` and the file name",
                    file=m.path,
                )
                for m in unknown
            )
        )


def list_live(
    reader: PipelineLister, manifests: Sequence[Manifest], mage_url: str
) -> dict[str, list[LiveBackfill]]:
    """The live backfills of the manifests' pipelines, in as few listings as Mage allows. A row Mage
    cannot read back breaks every listing that holds it: then each pipeline is listed alone, to name it."""
    try:
        listed = reader.list_backfills_of([m.pipeline_uuid for m in manifests])
    except ApiError as exc:
        if not is_unreadable_row(exc):
            raise
        return {m.pipeline_uuid: list_pipeline(reader, m, mage_url) for m in manifests}
    return {m.pipeline_uuid: own_rows(m, listed[m.pipeline_uuid], mage_url) for m in manifests}


def list_pipeline(reader: PipelineLister, manifest: Manifest, mage_url: str) -> list[LiveBackfill]:
    """The live backfills of a manifest's pipeline; a row Mage cannot read back is named plainly, and a
    row of another pipeline in the listing is refused (own_rows)."""
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
    return own_rows(manifest, rows, mage_url)


def own_rows(manifest: Manifest, rows: list[LiveBackfill], mage_url: str) -> list[LiveBackfill]:
    """The rows listed for a manifest's pipeline, refused if any is of another pipeline (planned, it
    would become an update, a start or a delete of a backfill this manifest does not own)."""
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


def with_run_counts(
    live: Mapping[str, Sequence[LiveBackfill]], counts: Mapping[int, RunCounts]
) -> dict[str, list[LiveBackfill]]:
    """The live backfills, those in `counts` carrying their run counts."""
    return {uuid: [_with_counts(b, counts.get(b.id)) for b in rows] for uuid, rows in live.items()}


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
