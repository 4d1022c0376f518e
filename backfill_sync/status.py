"""What `status`, `wait` and `apply --wait` report: each backfill's dates, judged on its runs (runs.py).

Reading goes through a small protocol (MageClient provides it): the backfills of the manifests'
pipelines, then the slim run list of every started one, and the trigger only where it decides whether
`initial` runs are stuck (a completed or cancelled backfill's trigger is inactive unless re-activated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from backfill_sync.live import PipelineLister, read_live_state
from backfill_sync.matching import match_backfills
from backfill_sync.models import DesiredBackfill, LiveBackfill, Manifest, Schedule
from backfill_sync.runs import Progress, Run, Trigger, Verdict, verdict, window_progress, window_runs

Outcome = Literal["completed", "running", "not_applied", "failed"]


class RunSource(Protocol):
    def runs_of(self, backfill_ids: Sequence[int]) -> dict[int, list[Run]]: ...
    def get_trigger(self, trigger_id: int) -> Trigger | None: ...


class StatusSource(PipelineLister, Protocol):
    @property
    def runs(self) -> RunSource: ...


@dataclass(frozen=True, slots=True)
class BackfillStatus:
    """One backfill and how its window's dates stand."""

    pipeline_uuid: str
    live: LiveBackfill
    desired: DesiredBackfill | None  # None: unmanaged (shown with --all)
    progress: Progress | None  # None: never started, or Mage holds no usable window for it

    @property
    def verdict(self) -> Verdict:
        if self.not_applied:
            return "not_applied"
        return verdict(self.live.status, self.progress, declared_cancelled=self.declared_cancelled)

    @property
    def not_applied(self) -> bool:
        """Declared `state: started`, yet Mage never started it: an apply failed, was blocked or never ran."""
        return self.desired is not None and self.desired.state == "started" and self.live.status is None

    @property
    def declared_cancelled(self) -> bool:
        return self.desired is not None and self.desired.state == "cancelled"

    @property
    def failed_count(self) -> int:
        """Dates whose latest run failed, in a backfill not meant to be cancelled."""
        if self.progress is None or self.verdict == "cancelled":
            return 0
        return self.progress.count("failed")

    @property
    def cancelled_count(self) -> int:
        """Dates cancelled one by one in a backfill not meant to be cancelled: they were not reprocessed
        (exit codes treat them as failed; they are named cancelled)."""
        if self.progress is None or self.verdict == "cancelled":
            return 0
        return self.progress.count("cancelled")

    @property
    def has_dates_to_retry(self) -> bool:
        """Failed or cancelled dates: what `retry_failed_before` retries."""
        return self.failed_count + self.cancelled_count > 0


@dataclass(frozen=True, slots=True)
class Missing:
    """A manifest entry declared `state: started` that Mage does not have: not applied (yet)."""

    pipeline_uuid: str
    desired: DesiredBackfill


@dataclass(frozen=True, slots=True)
class StatusReport:
    mage_url: str
    backfills: tuple[BackfillStatus, ...]
    missing: tuple[Missing, ...] = ()

    @property
    def not_applied(self) -> tuple[BackfillStatus | Missing, ...]:
        """Entries declared `state: started` that Mage lacks or never started."""
        return (*(b for b in self.backfills if b.not_applied), *self.missing)

    def outcome(self) -> Outcome:
        """failed: some dates failed, were cancelled one by one or will never run (running or not);
        not_applied: none failed, but some entries declared started are not started in Mage; running:
        some still run and none failed; completed: every started backfill completed (backfills cancelled
        as a whole are not failures)."""
        verdicts = [backfill.verdict for backfill in self.backfills]
        if any(backfill.has_dates_to_retry for backfill in self.backfills) or any(
            word in ("failed", "incomplete") for word in verdicts
        ):
            return "failed"
        if self.not_applied:
            return "not_applied"
        return "running" if "running" in verdicts else "completed"


Found = tuple[str, LiveBackfill, DesiredBackfill | None]


@dataclass(frozen=True, slots=True)
class Selection:
    """What the manifests manage in Mage: the backfills found, and the started entries Mage lacks."""

    found: tuple[Found, ...]
    missing: tuple[Missing, ...] = ()

    @property
    def not_applied(self) -> bool:
        """Whether some entry declared `state: started` is missing from Mage or was never started."""
        return bool(self.missing) or any(
            desired is not None and desired.state == "started" and live.status is None
            for _, live, desired in self.found
        )


def find_backfills(
    source: PipelineLister, manifests: Sequence[Manifest], *, mage_url: str, include_unmanaged: bool = False
) -> Selection:
    """(pipeline, live backfill, its manifest entry) for every managed backfill Mage has, in manifest
    order; with include_unmanaged, then the other backfills of those pipelines (entry None). Entries
    declared `state: started` that Mage does not have are the selection's `missing`."""
    live_by_pipeline = read_live_state(source, manifests, mage_url=mage_url)
    found: list[Found] = []
    missing: list[Missing] = []
    for manifest in manifests:
        live = live_by_pipeline[manifest.pipeline_uuid]
        matches = match_backfills(manifest, live)
        for desired in manifest.backfills:
            match = matches[desired.name]
            if match is not None:
                found.append((manifest.pipeline_uuid, match, desired))
            elif desired.state == "started":
                missing.append(Missing(manifest.pipeline_uuid, desired))
        if include_unmanaged:
            claimed = {match.id for match in matches.values() if match is not None}
            found += [(manifest.pipeline_uuid, row, None) for row in live if row.id not in claimed]
    return Selection(tuple(found), tuple(missing))


def read_status(
    source: StatusSource,
    manifests: Sequence[Manifest],
    *,
    mage_url: str,
    include_unmanaged: bool = False,
) -> StatusReport:
    """Every managed backfill Mage has (and, with include_unmanaged, the others of those pipelines)."""
    selection = find_backfills(source, manifests, mage_url=mage_url, include_unmanaged=include_unmanaged)
    return report_of(source, selection, mage_url=mage_url)


def report_of(source: StatusSource, selection: Selection, *, mage_url: str) -> StatusReport:
    """How the selected backfills stand: one slim run list per started backfill."""
    chosen = selection.found
    started = [live.id for _, live, _ in chosen if live.status is not None and live.schedule() is not None]
    runs = source.runs.runs_of(started)
    return StatusReport(
        mage_url=mage_url,
        backfills=tuple(
            BackfillStatus(uuid, live, desired, _progress(source.runs, live, runs.get(live.id)))
            for uuid, live, desired in chosen
        ),
        missing=selection.missing,
    )


def status_of(live: LiveBackfill, runs: Sequence[Run], trigger: Trigger | None) -> Progress | None:
    """A started backfill's progress from its run list; the trigger decides whether initial runs wait."""
    if live.status is None:
        return None
    active = None if trigger is None else trigger.active
    return window_progress(live.schedule(), runs, trigger_active=active)


def trigger_may_be_off(live: LiveBackfill) -> bool:
    """Only a completed or cancelled backfill's trigger goes inactive (and runs created on it afterwards
    then never start); while it runs, or after a failure, Mage keeps it active (mage-runs-api.md §4.9)."""
    return live.status in ("completed", "cancelled") and live.pipeline_schedule_id is not None


def needs_trigger(live: LiveBackfill, schedule: Schedule | None, runs: Sequence[Run]) -> bool:
    """Whether the trigger decides something: initial runs under a trigger that may be inactive."""
    if not trigger_may_be_off(live):
        return False
    return any(run.status == "initial" for run in window_runs(schedule, runs).values())


def _progress(source: RunSource, live: LiveBackfill, runs: Sequence[Run] | None) -> Progress | None:
    if runs is None:
        return None
    trigger = None
    if needs_trigger(live, live.schedule(), runs):
        assert live.pipeline_schedule_id is not None, "needs_trigger checked it"
        trigger = source.get_trigger(live.pipeline_schedule_id)
    return status_of(live, runs, trigger)
