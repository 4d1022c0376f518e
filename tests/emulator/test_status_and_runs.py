"""Status PUTs and the scheduler (mage-api.md §4.6): start, cancel, re-run, completion, failure."""

from __future__ import annotations

import time

from backfill_sync.emulator import EmulatorConfig, EmulatorServer
from tests.emulator.conftest import PIPELINE, wait_for
from tests.emulator_http import Api, login

SCHEDULE = {
    "start_datetime": "2024-05-01",
    "end_datetime": "2024-05-03",
    "interval_type": "day",
    "interval_units": 1,
}


def runs_of(api, backfill_id):
    return api.get(f"/api/pipeline_runs?backfill_id={backfill_id}").body["pipeline_runs"]


def detail(api, backfill_id):
    return api.get(f"/api/backfills/{backfill_id}?include_run_count=true").body["backfill"]


def test_other_status_strings_are_ignored_but_fields_apply(owner):
    created = owner.create(PIPELINE, name="n", **SCHEDULE)
    for status in ("running", "completed", "failed", "bogus"):
        answer = owner.put(created["id"], status=status, name=f"renamed-{status}").body["backfill"]
        assert (answer["status"], answer["name"]) == (None, f"renamed-{status}")
    assert runs_of(owner, created["id"]) == []


def test_initial_creates_one_run_per_date_and_drops_other_fields(owner):
    created = owner.create(PIPELINE, name="n", variables={"v": 1}, **SCHEDULE)
    started = owner.put(created["id"], status="initial", name="ignored").body["backfill"]
    assert (started["status"], started["name"]) == ("initial", "n")
    assert started["started_at"] is not None
    assert started["pipeline_schedule_id"] is not None
    runs = runs_of(owner, created["id"])
    assert sorted(run["execution_date"] for run in runs) == [
        "2024-05-01 00:00:00",
        "2024-05-02 00:00:00",
        "2024-05-03 00:00:00",
    ]
    assert runs[0]["variables"]["v"] == 1
    assert runs[0]["pipeline_schedule_name"] == "Backfill n"


def test_same_status_is_a_no_op_that_applies_fields(owner):
    created = owner.create(PIPELINE, name="n", **SCHEDULE)
    owner.put(created["id"], status="initial")
    again = owner.put(created["id"], status="initial", name="applied").body["backfill"]
    assert again["name"] == "applied"
    assert len(runs_of(owner, created["id"])) == 3


def test_cancel_cancels_unfinished_runs(owner):
    created = owner.create(PIPELINE, name="n", **SCHEDULE)
    owner.put(created["id"], status="initial")
    cancelled = owner.put(created["id"], status="cancelled", name="ignored").body["backfill"]
    assert (cancelled["status"], cancelled["name"]) == ("cancelled", "n")
    assert detail(owner, created["id"])["run_status_counts"] == {"cancelled": 3}
    assert owner.put(created["id"], status="cancelled").error is None


def test_cancel_of_a_never_started_backfill_is_a_500_but_saved(owner):
    created = owner.create(PIPELINE, name="n", **SCHEDULE)
    answer = owner.put(created["id"], status="cancelled")
    assert answer.error["exception"] == "'NoneType' object has no attribute 'update'"
    assert detail(owner, created["id"])["status"] == "cancelled"


def test_rerun_creates_a_complete_new_set(owner):
    created = owner.create(PIPELINE, name="n", **SCHEDULE)
    owner.put(created["id"], status="initial")
    owner.control("POST", "runs/complete", {"backfill_id": created["id"], "status": "completed"})
    done = detail(owner, created["id"])
    assert (done["status"], done["run_status_counts"]) == ("completed", {"completed": 3})
    assert done["completed_at"] is not None
    owner.put(created["id"], status="initial")
    rerun = detail(owner, created["id"])
    assert len(runs_of(owner, created["id"])) == 6
    assert rerun["total_run_count"] == 3
    assert rerun["completed_at"] == done["completed_at"]
    assert sum(rerun["run_status_counts"].values()) == 3


def test_zero_dates_start_no_runs_and_stay_initial(owner):
    blocked = owner.create(PIPELINE, name="b", block_uuid="noop", **SCHEDULE)
    backwards = owner.create(PIPELINE, name="r", **{**SCHEDULE, "start_datetime": "2024-06-01"})
    for created in (blocked, backwards):
        assert owner.put(created["id"], status="initial").body["backfill"]["status"] == "initial"
        assert runs_of(owner, created["id"]) == []
    time.sleep(0.5)  # several scheduler ticks: nothing may move it on
    assert detail(owner, backwards["id"])["status"] == "initial"


def test_failed_runs_fail_the_backfill_without_failed_at(owner):
    created = owner.create(PIPELINE, name="n", **SCHEDULE)
    owner.put(created["id"], status="initial")
    answer = owner.control("POST", "runs/complete", {"backfill_id": created["id"], "status": "failed"})
    assert answer.body == {"ok": True, "runs": 3}
    failed = detail(owner, created["id"])
    assert (failed["status"], failed["failed_at"], failed["run_status_counts"]) == (
        "failed",
        None,
        {"failed": 3},
    )


def test_scheduler_moves_a_started_backfill_to_completed():
    with EmulatorServer(EmulatorConfig(pipelines=(PIPELINE,), run_seconds=0.3)) as server:
        api = Api(server.url, login(server.url, "admin@admin.com", "admin"))
        created = api.create(PIPELINE, name="n", **SCHEDULE)
        api.put(created["id"], status="initial")
        done = wait_for(lambda: (d := detail(api, created["id"]))["status"] == "completed" and d)
        assert done["run_status_counts"] == {"completed": 3}
        assert done["completed_at"] >= done["started_at"]


def test_runs_never_finish_on_their_own_with_run_seconds_0(owner):
    created = owner.create(PIPELINE, name="n", **SCHEDULE)
    owner.put(created["id"], status="initial")
    running = wait_for(lambda: (d := detail(owner, created["id"]))["status"] == "running" and d)
    assert running["run_status_counts"] == {"running": 3}


def test_a_trigger_starts_no_more_runs_than_its_pipeline_run_limit(owner):
    # Mage copies the backfill's settings into the trigger it makes, and schedule_all starts at most
    # pipeline_run_limit runs of a trigger at once, earliest execution date first.
    one = owner.create(PIPELINE, name="one", settings={"pipeline_run_limit": 1}, **SCHEDULE)
    held = owner.create(PIPELINE, name="held", settings={"pipeline_run_limit": 0}, **SCHEDULE)
    for created in (one, held):
        owner.put(created["id"], status="initial")
    wait_for(lambda: detail(owner, one["id"])["status"] == "running")
    time.sleep(0.5)  # several scheduler ticks: no second run may start, and the held ones none at all
    assert detail(owner, one["id"])["run_status_counts"] == {"running": 1, "initial": 2}
    (first,) = [run for run in runs_of(owner, one["id"]) if run["status"] == "running"]
    assert first["execution_date"] == "2024-05-01 00:00:00"
    assert detail(owner, held["id"])["run_status_counts"] == {"initial": 3}
