"""apply's decisions without a server: what it sends, when it refuses, and how it stops on Ctrl-C.

The HTTP behaviour of apply is covered end to end in tests/contract/test_plan_apply.py; these tests pin
the pure parts and use a small in-memory stand-in for Mage.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Collection
from itertools import count

import pytest

from backfill_sync.apply import apply_item, apply_plan, check_run_budget, planned_runs, seen_by
from backfill_sync.apply_steps import RunAccess, fields_to_send
from backfill_sync.errors import BackfillSyncError
from backfill_sync.models import BackfillFields, LiveBackfill, StatusCommand
from tests.factories import desired, live, manifest, name_only_absent, plan_of


class FakeMage:
    """Just enough of Mage for apply: a dict of backfills, and a log of the writes it received."""

    def __init__(self, *backfills: LiveBackfill) -> None:
        self.rows = {backfill.id: backfill for backfill in backfills}
        self.writes: list[str] = []
        self.reads: list[str] = []
        self._ids = count(100)

    def get_backfill(self, backfill_id: int) -> LiveBackfill | None:
        self.reads.append(f"get {backfill_id}")
        return self.rows.get(backfill_id)

    @property
    def runs(self) -> RunAccess:
        raise AssertionError("these plans have no run actions: apply must not read runs")

    def list_backfills(self, pipeline_uuid: str | None = None) -> list[LiveBackfill]:
        self.reads.append(f"list {pipeline_uuid}")
        return [row for row in self.rows.values() if pipeline_uuid in (None, row.pipeline_uuid)]

    def list_backfills_of(self, pipeline_uuids: Collection[str]) -> dict[str, list[LiveBackfill]]:
        self.reads.append(f"list {', '.join(sorted(pipeline_uuids))}")
        return {
            uuid: [row for row in self.rows.values() if row.pipeline_uuid == uuid] for uuid in pipeline_uuids
        }

    def create_backfill(self, pipeline_uuid: str, fields: BackfillFields) -> LiveBackfill:
        new = live(next(self._ids), fields.name, pipeline=pipeline_uuid, start=None, end=None)
        self.rows[new.id] = self._with(new, fields)
        self.writes.append(f"create {fields.name}")
        return self.rows[new.id]

    def update_backfill(self, pipeline_uuid: str, backfill_id: int, fields: BackfillFields) -> LiveBackfill:
        self.rows[backfill_id] = self._with(self.rows[backfill_id], fields)
        self.writes.append(f"update {backfill_id}")
        return self.rows[backfill_id]

    def set_status(
        self,
        pipeline_uuid: str,
        backfill_id: int,
        status: StatusCommand,
        *,
        known: LiveBackfill | None = None,
    ) -> LiveBackfill:
        self.rows[backfill_id] = dataclasses.replace(self.rows[backfill_id], status=status)
        self.writes.append(f"status {backfill_id} {status}")
        return self.rows[backfill_id]

    def delete_backfill(self, pipeline_uuid: str, backfill_id: int) -> bool:
        del self.rows[backfill_id]
        self.writes.append(f"delete {backfill_id}")
        return True

    def count_runs(self, backfill_id: int) -> int:
        return 0  # this stand-in creates no runs, so a start never shows duplicates

    @staticmethod
    def _with(row: LiveBackfill, fields: BackfillFields) -> LiveBackfill:
        changes = {
            name: getattr(fields, name)
            for name in ("name", "start_datetime", "end_datetime", "interval_type", "interval_units")
            if getattr(fields, name) is not None
        }
        for name in ("variables", "settings"):
            if getattr(fields, name) is not None:
                changes[name] = getattr(fields, name)
        return dataclasses.replace(row, **changes)


def test_a_create_sends_every_field_but_empty_objects():
    fields = fields_to_send(desired("new", variables={"a": 1}), None)
    assert fields.name == "new"
    assert fields.variables == {"a": 1}
    assert fields.settings is None
    assert fields.interval_units == 1


def test_an_update_sends_only_what_differs_and_clears_with_an_empty_object():
    fields = fields_to_send(desired("same", end="2024-02-29"), live(1, "same", variables={"old": True}))
    assert dataclasses.asdict(fields) | {"end_datetime": None} == dataclasses.asdict(
        BackfillFields(variables={})
    )
    assert fields.end_datetime is not None and fields.end_datetime.month == 2


def test_the_run_budget_counts_starts_and_allowed_restarts_only():
    plan = plan_of(
        manifest(
            desired("a", state="started"),
            desired("b", state="started"),
            desired("c", state="started"),
        ),
        live_backfills=[live(2, "b", status="cancelled"), live(3, "c", status="running")],
    )
    assert planned_runs(plan) == 31  # a starts; b's restart is blocked; c is already started
    check_run_budget(plan, 31)
    with pytest.raises(BackfillSyncError, match="starts 31 pipeline runs, more than --max-total-runs 30"):
        check_run_budget(plan, 30)


def test_progress_that_is_the_plans_own_is_finished_not_refused():
    # The plan wanted an update and a start; an earlier apply did the update and then failed.
    plan = plan_of(manifest(desired("x", end="2024-02-29", state="started")), live_backfills=[live(1, "x")])
    (item,) = plan.items()
    mage = FakeMage(live(1, "x", end="2024-02-29 00:00:00"))
    result = apply_item(item, mage, allow_restart=False)
    assert (result.outcome, mage.writes) == ("done", ["status 1 initial"])


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        pytest.param(live(1, "x", units=2), "changed since the plan was made (interval_units)", id="field"),
        pytest.param(live(1, "x", status="cancelled"), "is now cancelled", id="status"),
    ],
)
def test_other_changes_make_the_item_stale_and_nothing_is_written(now, reason):
    plan = plan_of(manifest(desired("x", end="2024-02-29")), live_backfills=[live(1, "x")])
    (item,) = plan.items()
    mage = FakeMage(now)
    result = apply_item(item, mage, allow_restart=False)
    assert result.outcome == "stale"
    assert reason in (result.message or "")
    assert mage.writes == []


def test_a_saved_plan_is_checked_against_one_fresh_listing_not_a_read_per_item():
    plan = plan_of(
        manifest(desired("x", end="2024-02-29"), desired("y", end="2024-02-29"), desired("new")),
        live_backfills=[live(1, "x"), live(2, "y")],
    )
    mage = FakeMage(live(1, "x"), live(2, "y", units=2))
    result = apply_plan(plan, mage)
    assert [item.outcome for item in result.items] == ["done", "stale", "done"]
    assert mage.reads == ["list etl_daily"] * 2  # the fresh listing, then the new backfill's twin check
    assert mage.writes == ["update 1", "create new", "update 100"]


def test_a_plan_made_a_moment_ago_is_its_own_read():
    plan = plan_of(manifest(desired("x", end="2024-02-29")), live_backfills=[live(1, "x")])
    mage = FakeMage(live(1, "x"))
    result = apply_plan(plan, mage, current=seen_by(plan))
    assert [item.outcome for item in result.items] == ["done"]
    assert (mage.reads, mage.writes) == ([], ["update 1"])


def test_a_delete_cancels_a_backfill_started_since_the_plan_its_own_read_saw():
    plan = plan_of(manifest(name_only_absent("x")), live_backfills=[live(1, "x")])
    mage = FakeMage(dataclasses.replace(live(1, "x"), status="running"))  # started by someone meanwhile
    result = apply_plan(plan, mage, current=seen_by(plan))
    assert [item.outcome for item in result.items] == ["done"]
    assert mage.reads == ["get 1"]  # its status, read again right before the delete
    assert mage.writes == ["status 1 cancelled", "delete 1"]


def test_a_delete_of_a_backfill_gone_meanwhile_sends_nothing():
    plan = plan_of(manifest(name_only_absent("x")), live_backfills=[live(1, "x")])
    mage = FakeMage()
    result = apply_plan(plan, mage, current=seen_by(plan))
    assert result.items[0].steps == ("id 1 already deleted (by another apply?)",)
    assert mage.writes == []


class HeldMage(FakeMage):
    """Holds every create after the first until released, so the second item is in flight on Ctrl-C."""

    def __init__(self) -> None:
        super().__init__()
        self.held = threading.Event()
        self.release = threading.Event()

    def create_backfill(self, pipeline_uuid: str, fields: BackfillFields) -> LiveBackfill:
        if self.writes:
            self.held.set()
            assert self.release.wait(timeout=30), "the test never released the held create"
        return super().create_backfill(pipeline_uuid, fields)


def test_ctrl_c_finishes_the_item_in_flight_and_skips_the_rest():
    plan = plan_of(manifest(*(desired(f"b{n}") for n in range(5))))
    mage = HeldMage()

    def interrupt(_result: object) -> None:
        # b0 is done and b1 is held in the only worker, so b2..b4 are still queued when Ctrl-C lands.
        # Release b1 a moment later, after apply has cancelled the queue (it does so at once).
        assert mage.held.wait(timeout=30), "b1 never started"
        threading.Timer(1.0, mage.release.set).start()
        raise KeyboardInterrupt

    result = apply_plan(plan, mage, parallelism=1, on_item_done=interrupt)
    outcomes = [item.outcome for item in result.items]
    assert outcomes == ["done", "done", "skipped", "skipped", "skipped"]
    # A create is the name first, then (once no twin from another apply turned up) the fields.
    assert mage.writes == ["create b0", "update 100", "create b1", "update 101"]
    assert all(item.message == "interrupted before it began" for item in result.items[2:])
    assert not result.ok
