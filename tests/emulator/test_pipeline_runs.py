"""Pipeline runs and triggers as real Mage 0.9.80 keeps them (mage-runs-api.md §4.8-4.15, §6.8-6.12)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.emulator.conftest import PIPELINE, wait_for
from tests.emulator_http import Api

SCHEDULE = {
    "start_datetime": "2024-01-01",
    "end_datetime": "2024-01-05",
    "interval_type": "day",
    "interval_units": 1,
}


def started(api: Api, name: str = "n", **fields) -> dict[str, Any]:
    created = api.create(PIPELINE, name=name, **{**SCHEDULE, **fields})
    api.put(created["id"], status="initial")
    return created


def runs(api: Api, backfill_id: int, query: str = "") -> list[dict[str, Any]]:
    answer = api.get(f"/api/pipeline_runs?backfill_id={backfill_id}&_limit=100{query}")
    assert answer.error is None, answer.body
    return list(answer.body["pipeline_runs"])


def detail(api: Api, backfill_id: int) -> dict[str, Any]:
    return dict(api.get(f"/api/backfills/{backfill_id}?include_run_count=true").body["backfill"])


def finish(api: Api, backfill_id: int, status: str = "completed", dates: list[str] | None = None) -> None:
    body = {"backfill_id": backfill_id, "status": status, **({"dates": dates} if dates else {})}
    assert api.control("POST", "runs/complete", body).status == 200


def retry(api: Api, run_id: int):
    return api(
        "PUT", f"/api/pipeline_runs/{run_id}", {"pipeline_run": {"pipeline_run_action": "retry_blocks"}}
    )


def running(api: Api, backfill_id: int) -> list[dict[str, Any]]:
    def all_running() -> list[dict[str, Any]]:
        found = runs(api, backfill_id)
        return found if all(run["status"] == "running" for run in found) else []

    found: list[dict[str, Any]] = wait_for(all_running)
    return found


def executions(api: Api) -> dict[str, int]:
    rows = api.control("GET", "executions").body["executions"]
    return {row["execution_date"][:10]: row["count"] for row in rows if row["pipeline_uuid"] == PIPELINE}


# -- listing ---------------------------------------------------------------------------------------


def test_runs_list_newest_date_first_and_slim_on_request(owner):
    created = started(owner)
    listed = runs(owner, created["id"])
    assert [run["execution_date"][:10] for run in listed] == [f"2024-01-0{d}" for d in (5, 4, 3, 2, 1)]
    slim = runs(owner, created["id"], "&_format=with_basic_details")
    assert slim[0] == {"execution_date": "2024-01-05 00:00:00", "id": listed[0]["id"], "status": "initial"}


def test_paging_fetches_limit_plus_one_and_never_pages_with_zero(owner):
    created = started(owner)
    page = owner.get(f"/api/pipeline_runs?backfill_id={created['id']}&_limit=2&_offset=4").body
    assert (len(page["pipeline_runs"]), page["metadata"]) == (1, {"count": 5, "next": False})
    zero = owner.get(f"/api/pipeline_runs?backfill_id={created['id']}&_limit=0").body
    assert (zero["pipeline_runs"], zero["metadata"]["next"]) == ([], True)
    bad = owner.get("/api/pipeline_runs?backfill_id=abc")
    assert bad.error["exception"] == "invalid literal for int() with base 10: 'abc'"


def test_order_by_id_and_status_filters(owner):
    created = started(owner)
    finish(owner, created["id"], "failed", ["2024-01-02", "2024-01-04"])
    by_id = runs(owner, created["id"], "&order_by[]=id%20asc")
    assert [run["id"] for run in by_id] == sorted(run["id"] for run in by_id)
    failed = runs(owner, created["id"], "&status=failed")
    assert sorted(run["execution_date"][:10] for run in failed) == ["2024-01-02", "2024-01-04"]
    either = runs(owner, created["id"], "&status[]=failed,cancelled")
    assert len(either) == 2
    unknown = owner.get(f"/api/pipeline_runs?backfill_id={created['id']}&order_by[]=bogus%20asc")
    assert unknown.error["exception"] == "type object 'PipelineRun' has no attribute 'bogus'"


def test_last_run_failed_leaves_out_superseded_failures(owner):
    created = started(owner)
    finish(owner, created["id"], "failed")
    first = runs(owner, created["id"])
    assert retry(owner, first[0]["id"]).body["pipeline_run"]["status"] == "running"
    finish(owner, created["id"], "completed")
    latest_failed = runs(owner, created["id"], "&status=last_run_failed&_format=with_basic_details")
    assert len(latest_failed) == 4
    assert first[0]["id"] not in {run["id"] for run in latest_failed}


def test_pipeline_uuid_turns_on_retries_grouping_and_breaks_paging(owner):
    created = started(owner)
    query = f"/api/pipeline_runs?backfill_id={created['id']}&pipeline_uuid={PIPELINE}&_limit=2"
    page = owner.get(query + "&_offset=0").body["pipeline_runs"]
    assert [run["execution_date"][:10] for run in page] == ["2024-01-05", "2024-01-04"]
    past_end = owner.get(query + "&_offset=6")
    assert past_end.error["exception"] == "list index out of range"
    clean = owner.get(query + "&_offset=6&disable_retries_grouping=1").body
    assert clean["pipeline_runs"] == []


# -- the lifecycle ---------------------------------------------------------------------------------


def test_one_failed_run_fails_the_backfill_while_others_still_run(owner):
    created = started(owner)
    running(owner, created["id"])
    finish(owner, created["id"], "failed", ["2024-01-02"])
    now = detail(owner, created["id"])
    assert (now["status"], now["run_status_counts"]) == ("failed", {"running": 4, "failed": 1})


def test_one_cancelled_run_leaves_the_backfill_running_forever(owner):
    created = started(owner)
    listed = running(owner, created["id"])
    owner("PUT", f"/api/pipeline_runs/{listed[0]['id']}", {"pipeline_run": {"status": "cancelled"}})
    finish(owner, created["id"], "completed")
    time.sleep(0.5)  # several scheduler ticks
    now = detail(owner, created["id"])
    assert (now["status"], now["run_status_counts"]) == ("running", {"cancelled": 1, "completed": 4})


def test_trigger_is_active_while_runs_run_and_inactive_once_completed(owner):
    created = started(owner)
    schedule_id = detail(owner, created["id"])["pipeline_schedule_id"]
    trigger = owner.get(f"/api/pipeline_schedules/{schedule_id}").body["pipeline_schedule"]
    assert (trigger["name"], trigger["status"], trigger["schedule_type"]) == ("Backfill n", "active", None)
    finish(owner, created["id"], "completed")
    done = detail(owner, created["id"])
    assert done["status"] == "completed"
    assert (
        owner.get(f"/api/pipeline_schedules/{schedule_id}").body["pipeline_schedule"]["status"] == "inactive"
    )


def test_retry_keeps_the_run_executes_once_and_completes_the_backfill(owner):
    created = started(owner)
    running(owner, created["id"])
    finish(owner, created["id"], "failed", ["2024-01-03"])
    finish(owner, created["id"], "completed")
    failed = runs(owner, created["id"], "&status=failed")[0]
    before = executions(owner)["2024-01-03"]
    for _ in range(2):  # sent twice back to back: executed once
        answer = retry(owner, failed["id"]).body["pipeline_run"]
        assert (answer["id"], answer["status"], answer["execution_date"]) == (
            failed["id"],
            "running",
            failed["execution_date"],
        )
    assert detail(owner, created["id"])["status"] == "failed"  # stays failed while the retry runs
    wait_for(lambda: executions(owner)["2024-01-03"] == before + 1)
    finish(owner, created["id"], "completed")
    done = detail(owner, created["id"])
    assert (done["status"], done["run_status_counts"]) == ("completed", {"completed": 5})
    assert executions(owner)["2024-01-03"] == before + 1


def test_retry_of_a_completed_run_executes_nothing(owner):
    created = started(owner)
    finish(owner, created["id"], "completed")
    before = executions(owner)
    retry(owner, runs(owner, created["id"])[0]["id"])
    wait_for(lambda: all(run["status"] == "completed" for run in runs(owner, created["id"])))
    assert executions(owner) == before


def test_a_run_created_on_an_inactive_trigger_waits_until_it_is_activated(owner):
    created = started(owner)
    finish(owner, created["id"], "completed")
    schedule_id = detail(owner, created["id"])["pipeline_schedule_id"]
    body = {
        "pipeline_run": {
            "execution_date": "2024-01-06T00:00:00",
            "backfill_id": created["id"],
            "variables": {"ds": "2024-01-06"},
        }
    }
    made = owner("POST", f"/api/pipeline_schedules/{schedule_id}/pipeline_runs", body).body["pipeline_run"]
    assert made["variables"] == {
        "ds": "2024-01-06",
        "execution_partition": f"{schedule_id}/20240106T000000_000000",
    }
    time.sleep(0.5)
    assert detail(owner, created["id"])["run_status_counts"] == {"initial": 1, "completed": 5}
    owner("PUT", f"/api/pipeline_schedules/{schedule_id}", {"pipeline_schedule": {"status": "active"}})
    wait_for(lambda: detail(owner, created["id"])["run_status_counts"].get("running") == 1)
    assert executions(owner)["2024-01-06"] == 1


def test_runs_of_chosen_dates_fail_until_the_outcome_is_lifted(owner, server):
    fast = started(owner, "fast")
    owner.control("POST", "runs/outcomes", {"pipeline_uuid": PIPELINE, "fail_dates": ["2024-01-02"]})
    finish(owner, fast["id"], "auto")
    assert detail(owner, fast["id"])["run_status_counts"] == {"completed": 4, "failed": 1}
    owner.control("POST", "runs/outcomes", {"pipeline_uuid": PIPELINE, "fail_dates": []})
    retry(owner, runs(owner, fast["id"], "&status=failed")[0]["id"])
    finish(owner, fast["id"], "auto")
    assert detail(owner, fast["id"])["run_status_counts"] == {"completed": 5}


# -- who may do what -------------------------------------------------------------------------------


def test_viewers_read_runs_and_editors_retry_them(owner, editor, server):
    from tests.emulator_http import login

    viewer = Api(server.url, login(server.url, "viewer@example.com", "viewer"))
    created = started(owner)
    run_id = runs(
        viewer, created["id"], "&status=last_run_failed&_format=with_basic_details&order_by[]=id%20asc"
    )
    assert run_id == []
    first = runs(viewer, created["id"])[0]["id"]
    refused = retry(viewer, first).error
    assert refused["message"] == "Unauthorized operation update on pipeline_runs, failed condition."
    assert retry(editor, first).error is None
    odd = editor("PUT", f"/api/pipeline_runs/{first}", {"pipeline_run": {"foo": 1}}).error
    assert odd["message"] == "write of foo on update is disabled for pipeline_runs."


@pytest.mark.parametrize(("who", "version"), [("owner", "0.9.80"), ("anonymous", None)])
def test_projects_tell_the_version_to_users_only(server, owner, who, version):
    api = owner if who == "owner" else Api(server.url)
    project = api.get("/api/projects").body["projects"][0]
    assert project.get("version") == version
