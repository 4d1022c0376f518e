"""Wait until started backfills are finished, polling Mage gently; report through callbacks.

Per poll, one detail read with run counts per unfinished backfill. Mage's counts cover every date the
backfill ever ran, so a backfill is judged on its slim run list whenever the counts say it is done (once,
at the end) or cannot tell (runs outside the window). The slim list of failed runs is read only when the
number of failed dates changes, to name them as they come. A completed or cancelled backfill's trigger
is read only when `initial` runs appear under it: an inactive trigger never starts them (they are stuck,
and not waited on). The interval backs off from 2 s to 30 s: Mage's scheduler ticks every 10 s anyway.

Nothing here writes to Mage; the clock and the sleep are injected so tests need not wait.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from backfill_sync.errors import MageError
from backfill_sync.models import DesiredBackfill, LiveBackfill
from backfill_sync.runs import Progress, Run, Trigger, progress_from_counts, window_runs
from backfill_sync.status import BackfillStatus, StatusReport, needs_trigger, status_of, trigger_may_be_off

FIRST_INTERVAL = 2.0
MAX_INTERVAL = 30.0
BACKOFF_FACTOR = 1.5
RUN_STATUS_COUNTS_SINCE = "0.9.70"  # mage-ai commit b622d74 (PR #4942) added run_status_counts

# not_applied: some entry declared `state: started` is missing from Mage or never started; nothing is
# waited for then (no run of it will ever come by waiting). nothing_to_wait_for: no target was started
# (or, for apply --wait, every one it did not start had finished before): no date was looked at.
WaitResultKind = Literal[
    "completed", "failed", "timed_out", "interrupted", "not_applied", "nothing_to_wait_for"
]


class WaitRuns(Protocol):
    def list_runs(self, backfill_id: int, *, status: str | None = None, full: bool = False) -> list[Run]: ...
    def get_trigger(self, trigger_id: int) -> Trigger | None: ...
    def server_version(self) -> str | None: ...


class WaitSource(Protocol):
    def poll_backfills(self, backfill_ids: Sequence[int]) -> dict[int, LiveBackfill | None]: ...

    @property
    def runs(self) -> WaitRuns: ...


class MissingRunCounts(MageError):
    """This Mage does not report run counts per date, which waiting relies on."""


@dataclass(frozen=True, slots=True)
class Target:
    """A backfill to wait for. `always`: report it even when it was finished before waiting began
    (apply --wait reports what it started; what it did not touch counts only while it still runs)."""

    pipeline_uuid: str
    live: LiveBackfill
    desired: DesiredBackfill | None
    always: bool = True


@dataclass(frozen=True, slots=True)
class WaitResult:
    kind: WaitResultKind
    report: StatusReport
    waited: float  # seconds
    # Targets not waited for (not `always`) that had finished before waiting began: apply --wait reports
    # their failed or cancelled dates, since it did not wait for them, without judging by them.
    not_waited: tuple[BackfillStatus, ...] = ()


@dataclass(frozen=True, slots=True)
class Clock:
    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def wait_for(
    targets: Sequence[Target],
    source: WaitSource,
    *,
    mage_url: str,
    timeout: float,
    clock: Clock | None = None,
    on_update: Callable[[BackfillStatus], None] | None = None,
) -> WaitResult:
    """Poll until every started target is finished, the timeout passes, or Ctrl-C (which writes nothing)."""
    clock = clock or Clock()
    began = clock.now()
    poller = _Poller(source, {t.live.id: t for t in targets}, on_update)
    interval = FIRST_INTERVAL
    kind: WaitResultKind | None = None
    try:
        while True:
            poller.poll()
            if not poller.pending:
                break
            left = timeout - (clock.now() - began)
            if left <= 0:
                kind = "timed_out"
                break
            clock.sleep(min(interval, left))
            interval = min(interval * BACKOFF_FACTOR, MAX_INTERVAL)
        poller.name_failed_dates()
    except KeyboardInterrupt:
        kind = "interrupted"
    report = StatusReport(mage_url=mage_url, backfills=poller.statuses(targets))
    if kind is None:
        kind = _finished_kind(report)
    return WaitResult(kind, report, clock.now() - began, poller.not_waited(targets))


def _finished_kind(report: StatusReport) -> WaitResultKind:
    if all(backfill.live.status is None and not backfill.not_applied for backfill in report.backfills):
        return "nothing_to_wait_for"
    outcome = report.outcome()
    return "completed" if outcome == "completed" else "not_applied" if outcome == "not_applied" else "failed"


class _Poller:
    """The state of one wait: the latest status of each target, and which are still pending."""

    def __init__(
        self,
        source: WaitSource,
        targets: Mapping[int, Target],
        on_update: Callable[[BackfillStatus], None] | None,
    ) -> None:
        self._source = source
        self._targets = targets
        self._on_update = on_update
        self._latest: dict[int, BackfillStatus] = {}
        self._failed_seen: dict[int, int] = {}
        self._dropped: set[int] = set()
        self.pending: set[int] = set(targets)
        self.polled = False

    def poll(self) -> None:
        first = not self.polled
        found = self._source.poll_backfills(sorted(self.pending))
        for backfill_id, live in found.items():
            target = self._targets[backfill_id]
            if live is None:
                self.pending.discard(backfill_id)  # deleted meanwhile: its last status stands
                continue
            status = BackfillStatus(target.pipeline_uuid, live, target.desired, self._progress(live))
            finished = status.progress is None or status.progress.finished  # None: nothing to wait for
            if first and finished and not target.always:
                self._dropped.add(backfill_id)
            if finished:
                self.pending.discard(backfill_id)
            self._record(status)
        self.polled = True

    def _progress(self, live: LiveBackfill) -> Progress | None:
        schedule = live.schedule()
        if schedule is None or live.status is None:
            return None
        counts = live.run_status_counts
        if counts is None or live.total_run_count is None:
            raise self._missing_counts()
        estimate = progress_from_counts(live.total_run_count, counts)
        beyond_window = sum(counts.values()) > live.total_run_count
        if estimate.finished or beyond_window or (estimate.count("initial") and trigger_may_be_off(live)):
            return self._exact(live)
        if estimate.count("failed") != self._failed_seen.get(live.id, 0):
            return self._with_failed_dates(live, estimate)
        previous = self._latest.get(live.id)
        if previous is not None and previous.progress is not None:
            return dataclasses.replace(estimate, failed_dates=previous.progress.failed_dates)
        return estimate

    def _exact(self, live: LiveBackfill) -> Progress | None:
        runs = self._source.runs.list_runs(live.id)
        trigger = None
        if needs_trigger(live, live.schedule(), runs) and live.pipeline_schedule_id is not None:
            trigger = self._source.runs.get_trigger(live.pipeline_schedule_id)
        progress = status_of(live, runs, trigger)
        if progress is not None:
            self._failed_seen[live.id] = progress.count("failed")
        return progress

    def _with_failed_dates(self, live: LiveBackfill, estimate: Progress) -> Progress:
        failed = self._source.runs.list_runs(live.id, status="last_run_failed")
        self._failed_seen[live.id] = estimate.count("failed")
        in_window = window_runs(live.schedule(), failed)
        return dataclasses.replace(estimate, failed_dates=tuple(sorted(in_window)))

    def name_failed_dates(self) -> None:
        """Backfills still running at the end: their failed dates, from one last slim failed list."""
        for backfill_id in sorted(self.pending):
            status = self._latest.get(backfill_id)
            if status is None or status.progress is None or not status.progress.count("failed"):
                continue
            if len(status.progress.failed_dates) != status.progress.count("failed"):
                progress = self._with_failed_dates(status.live, status.progress)
                self._record(dataclasses.replace(status, progress=progress))

    def _record(self, status: BackfillStatus) -> None:
        before = self._latest.get(status.live.id)
        self._latest[status.live.id] = status
        if self._on_update is not None and status.live.id not in self._dropped and _changed(before, status):
            self._on_update(status)

    def statuses(self, targets: Sequence[Target]) -> tuple[BackfillStatus, ...]:
        return tuple(
            self._latest.get(t.live.id) or BackfillStatus(t.pipeline_uuid, t.live, t.desired, None)
            for t in targets
            if t.live.id not in self._dropped
        )

    def not_waited(self, targets: Sequence[Target]) -> tuple[BackfillStatus, ...]:
        return tuple(self._latest[t.live.id] for t in targets if t.live.id in self._dropped)

    def _missing_counts(self) -> MissingRunCounts:
        try:
            version = self._source.runs.server_version()
        except MageError:
            version = None
        which = f"Mage {version}" if version else "This Mage"
        return MissingRunCounts(
            f"{which} does not report runs per date (run_status_counts, which mage-ai added in "
            f"{RUN_STATUS_COUNTS_SINCE}), so backfill-sync cannot tell when its backfills are finished; "
            f"upgrade Mage to {RUN_STATUS_COUNTS_SINCE} or later"
        )


def _changed(before: BackfillStatus | None, after: BackfillStatus) -> bool:
    if before is None or before.progress is None or after.progress is None:
        return True
    return (dict(before.progress.counts), before.verdict) != (dict(after.progress.counts), after.verdict)
