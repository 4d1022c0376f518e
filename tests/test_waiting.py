"""The wait loop, driven by a scripted Mage and a fake clock: what it reads, when, and how it ends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from backfill_sync.models import LiveBackfill
from backfill_sync.runs import Run, Trigger
from backfill_sync.status import BackfillStatus
from backfill_sync.waiting import Clock, MissingRunCounts, Target, wait_for

JAN = (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 5, tzinfo=UTC))


def live(
    status: str | None, counts: dict[str, int] | None, *, total: int = 5, trigger: int | None = 7
) -> LiveBackfill:
    return LiveBackfill(
        id=1,
        pipeline_uuid="p",
        name="b",
        start_datetime=JAN[0],
        end_datetime=JAN[1],
        interval_type="day",
        interval_units=1,
        variables=None,
        settings=None,
        status=status,
        total_run_count=None if counts is None else total,
        run_status_counts=counts,
        pipeline_schedule_id=trigger,
    )


def runs(*statuses: str) -> list[Run]:
    return [Run(i + 1, datetime(2024, 1, i + 1, tzinfo=UTC), status) for i, status in enumerate(statuses)]


@dataclass
class ScriptedMage:
    """Answers polls from a script (the last entry repeats) and records every read."""

    polls: list[LiveBackfill]
    run_list: list[Run] = field(default_factory=list)
    trigger: Trigger | None = None
    reads: list[str] = field(default_factory=list)

    @property
    def runs(self) -> ScriptedMage:
        return self

    def poll_backfills(self, backfill_ids: Sequence[int]) -> dict[int, LiveBackfill | None]:
        self.reads.append("poll")
        answer = self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]
        return dict.fromkeys(backfill_ids, answer)

    def list_runs(self, backfill_id: int, *, status: str | None = None, full: bool = False) -> list[Run]:
        self.reads.append(f"runs:{status or 'all'}")
        if status == "last_run_failed":
            return [run for run in self.run_list if run.status == "failed"]
        return list(self.run_list)

    def get_trigger(self, trigger_id: int) -> Trigger | None:
        self.reads.append("trigger")
        return self.trigger

    def server_version(self) -> str | None:
        return "0.9.60"


@dataclass
class FakeClock:
    now_value: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.now_value

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_value += seconds


def run_wait(
    mage: ScriptedMage, *, timeout: float = 3600, always: bool = True, clock: FakeClock | None = None
):
    clock = clock or FakeClock()
    updates: list[BackfillStatus] = []
    result = wait_for(
        [Target("p", live("initial", None), None, always=always)],
        mage,
        mage_url="http://mage",
        timeout=timeout,
        clock=Clock(now=clock.now, sleep=clock.sleep),
        on_update=updates.append,
    )
    return result, clock, updates


def test_waits_until_every_date_completed_backing_off_from_2_seconds():
    mage = ScriptedMage(
        polls=[
            live("initial", {"initial": 5}),
            live("running", {"running": 3, "completed": 2}),
            live("running", {"running": 1, "completed": 4}),
            live("completed", {"completed": 5}),
        ],
        run_list=runs(*["completed"] * 5),
    )
    result, clock, updates = run_wait(mage)
    assert result.kind == "completed"
    assert clock.sleeps == [2.0, 3.0, 4.5]
    assert mage.reads == ["poll", "poll", "poll", "poll", "runs:all"]  # the run list once, at the end
    assert [update.progress.finished_dates for update in updates if update.progress] == [0, 2, 4, 5]


def test_the_interval_stops_growing_at_30_seconds():
    mage = ScriptedMage(polls=[live("running", {"running": 5})])
    _, clock, _ = run_wait(mage, timeout=200)
    assert max(clock.sleeps) == 30.0
    assert clock.sleeps[:3] == [2.0, 3.0, 4.5]


def test_mage_saying_failed_while_runs_run_is_not_the_end():
    mage = ScriptedMage(
        polls=[
            live("failed", {"failed": 1, "running": 4}),
            live("failed", {"failed": 1, "running": 4}),
            live("failed", {"failed": 2, "completed": 3}),
        ],
        run_list=runs("failed", "failed", "completed", "completed", "completed"),
    )
    result, _, updates = run_wait(mage)
    assert result.kind == "failed"
    # The failed list only when the failed count changed; the full list once at the end.
    assert mage.reads == ["poll", "runs:last_run_failed", "poll", "poll", "runs:all"]
    assert len(updates[0].progress.failed_dates) == 2  # named as soon as the count moved (from the list)
    final = result.report.backfills[0]
    assert (final.verdict, len(final.progress.failed_dates)) == ("failed", 2)


def test_running_forever_after_one_cancelled_run_is_finished():
    mage = ScriptedMage(
        polls=[live("running", {"cancelled": 1, "completed": 4})],
        run_list=runs("cancelled", "completed", "completed", "completed", "completed"),
    )
    result, clock, _ = run_wait(mage)
    assert (result.kind, clock.sleeps) == ("failed", [])
    assert result.report.backfills[0].progress.cancelled_dates == (datetime(2024, 1, 1, tzinfo=UTC),)


def test_initial_runs_under_an_inactive_trigger_are_stuck_not_waited_on():
    mage = ScriptedMage(
        polls=[live("completed", {"initial": 1, "completed": 4})],
        run_list=runs("completed", "completed", "completed", "completed", "initial"),
        trigger=Trigger(7, "inactive"),
    )
    result, clock, _ = run_wait(mage)
    assert (result.kind, clock.sleeps, mage.reads) == ("failed", [], ["poll", "runs:all", "trigger"])
    assert result.report.backfills[0].verdict == "incomplete"


def test_initial_runs_under_an_active_trigger_are_waited_on():
    mage = ScriptedMage(
        polls=[live("completed", {"initial": 1, "completed": 4}), live("completed", {"completed": 5})],
        run_list=runs("completed", "completed", "completed", "completed", "initial"),
        trigger=Trigger(7, "active"),
    )
    mage_done = runs(*["completed"] * 5)
    original = mage.list_runs

    def list_runs(backfill_id, *, status=None, full=False):
        found = original(backfill_id, status=status, full=full)
        mage.run_list = mage_done  # by the next read, the run has completed
        return found

    mage.list_runs = list_runs  # type: ignore[method-assign]
    result, clock, _ = run_wait(mage)
    assert (result.kind, clock.sleeps) == ("completed", [2.0])


def test_runs_outside_the_window_make_it_read_the_run_list():
    mage = ScriptedMage(
        polls=[live("running", {"completed": 5, "running": 1})],  # 6 counted for a 5-date window
        run_list=[*runs(*["completed"] * 5), Run(9, datetime(2024, 1, 9, tzinfo=UTC), "running")],
    )
    result, clock, _ = run_wait(mage)
    assert (result.kind, clock.sleeps) == ("completed", [])


def test_the_timeout_ends_the_wait_and_names_failed_dates():
    mage = ScriptedMage(
        polls=[live("failed", {"failed": 1, "running": 4})],
        run_list=runs("failed", "running", "running", "running", "running"),
    )
    result, clock, _ = run_wait(mage, timeout=10)
    assert result.kind == "timed_out"
    assert sum(clock.sleeps) == pytest.approx(10)
    assert result.report.backfills[0].progress.failed_dates == (datetime(2024, 1, 1, tzinfo=UTC),)


def test_ctrl_c_stops_waiting():
    class Interrupting(FakeClock):
        def sleep(self, seconds: float) -> None:
            raise KeyboardInterrupt

    mage = ScriptedMage(polls=[live("running", {"running": 5})])
    result, _, _ = run_wait(mage, clock=Interrupting())
    assert result.kind == "interrupted"
    assert result.report.backfills[0].verdict == "running"


def test_a_mage_without_run_counts_is_named_with_its_version():
    mage = ScriptedMage(polls=[live("running", None)])
    with pytest.raises(MissingRunCounts, match=r"Mage 0\.9\.60 does not report runs per date .* 0\.9\.70"):
        run_wait(mage)


def test_a_finished_backfill_apply_did_not_touch_is_left_out():
    mage = ScriptedMage(polls=[live("completed", {"completed": 5})], run_list=runs(*["completed"] * 5))
    result, _, updates = run_wait(mage, always=False)
    # Nothing was waited for: not "completed", which claimed dates it never looked at.
    assert (result.kind, result.report.backfills, updates) == ("nothing_to_wait_for", (), [])
    assert [status.verdict for status in result.not_waited] == ["completed"]


def test_dates_that_failed_before_apply_are_reported_not_waited_for():
    mage = ScriptedMage(
        polls=[live("failed", {"failed": 1, "completed": 4})],
        run_list=runs("completed", "failed", "completed", "completed", "completed"),
    )
    result, clock, _ = run_wait(mage, always=False)
    assert (result.kind, clock.sleeps, result.report.backfills) == ("nothing_to_wait_for", [], ())
    (earlier,) = result.not_waited
    assert earlier.progress is not None
    assert earlier.progress.failed_dates == (datetime(2024, 1, 2, tzinfo=UTC),)


def test_a_never_started_backfill_is_not_waited_on():
    mage = ScriptedMage(polls=[live(None, None)])
    result, clock, _ = run_wait(mage)
    # Nothing started, nothing looked at: not "completed".
    assert (result.kind, clock.sleeps, result.report.backfills[0].verdict) == (
        "nothing_to_wait_for",
        [],
        "not_started",
    )
