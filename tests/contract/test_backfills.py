"""Contract of MageClient's backfill calls, the same on the emulator and on real Mage, as owner and editor."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from backfill_sync.client import MageClient
from backfill_sync.errors import ApiError
from backfill_sync.models import BackfillFields, LiveBackfill
from tests.contract.conftest import Factory, fetch
from tests.contract.servers import MageServer

JAN_1 = datetime(2024, 1, 1, tzinfo=UTC)
SCHEDULER_DEADLINE = 90.0


def three_days() -> dict[str, object]:
    return {
        "start_datetime": JAN_1,
        "end_datetime": JAN_1 + timedelta(days=2),
        "interval_type": "day",
        "interval_units": 1,
    }


def wait_for(read: Callable[[], LiveBackfill], done: Callable[[LiveBackfill], bool]) -> LiveBackfill:
    """Poll with a deadline: the real scheduler moves backfills on in its own time."""
    deadline = time.monotonic() + SCHEDULER_DEADLINE
    while True:
        live = read()
        if done(live) or time.monotonic() > deadline:
            return live
        time.sleep(1.0)


def test_create_sends_every_field_and_reads_them_back(backfills: Factory):
    created = backfills.create("full", **three_days(), variables={"region": "eu", "n": 3})
    assert created.name == backfills.name("full")
    assert created.pipeline_uuid == backfills.pipeline_uuid
    assert (created.start_datetime, created.end_datetime) == (JAN_1, JAN_1 + timedelta(days=2))
    assert (created.interval_type, created.interval_units) == ("day", 1)
    assert created.variables == {"region": "eu", "n": 3}
    assert created.status is None
    assert backfills.api.get_backfill(created.id) == created


def test_name_only_create_leaves_the_schedule_unset(backfills: Factory):
    created = backfills.create("bare")
    assert created.start_datetime is None
    assert created.interval_type is None
    assert created.schedule() is None


def test_datetimes_are_sent_as_utc_and_keep_microseconds(backfills: Factory):
    plus_two = timezone(timedelta(hours=2))
    created = backfills.create(
        "tz",
        start_datetime=datetime(2024, 3, 1, 2, 0, tzinfo=plus_two),
        end_datetime=datetime(2024, 3, 2, 0, 0, 0, 123456, tzinfo=UTC),
        interval_type="hour",
        interval_units=6,
    )
    assert created.start_datetime == datetime(2024, 3, 1, 0, 0, tzinfo=UTC)
    assert created.end_datetime == datetime(2024, 3, 2, 0, 0, 0, 123456, tzinfo=UTC)


def test_update_is_partial(backfills: Factory):
    created = backfills.create("partial", **three_days(), variables={"a": 1})
    renamed = backfills.api.update_backfill(
        backfills.pipeline_uuid, created.id, BackfillFields(name=backfills.name("renamed"))
    )
    assert renamed.name == backfills.name("renamed")
    assert renamed.schedule() == created.schedule()
    assert renamed.variables == {"a": 1}


def test_listing_returns_each_backfill_of_the_pipeline_once(backfills: Factory):
    made = {backfills.create(f"list-{n}", **three_days()).id for n in range(5)}
    listed = [row.id for row in backfills.mine()]
    assert sorted(listed) == sorted(made)


def test_listing_pages_through_more_than_one_page(mage_server: MageServer, role: str, backfills: Factory):
    made = {backfills.create(f"page-{n}").id for n in range(7)}
    with MageClient(mage_server.connection(role), page_size=2) as small_pages:
        listed = [row.id for row in small_pages.list_backfills(mage_server.pipeline_uuid)]
    assert len(listed) == len(set(listed))
    assert made <= set(listed)


def test_unknown_pipeline_lists_empty_and_does_not_exist(client: MageClient, mage_server: MageServer):
    assert client.list_backfills("hc_no_such_pipeline") == []
    assert client.pipeline_exists("hc_no_such_pipeline") is False
    assert client.pipeline_exists(mage_server.pipeline_uuid) is True


@pytest.mark.parametrize("role", ["owner", "viewer"])
def test_the_pipelines_listing_pages_by_uuid_and_a_viewer_may_read_it(mage_server: MageServer, role: str):
    # plan learns which pipelines exist from this listing, and plan runs as a Viewer in CI.
    with MageClient(mage_server.connection(role)) as one_page:
        every = one_page.list_pipeline_uuids()
    with MageClient(mage_server.connection(role), page_size=1) as small_pages:
        paged = small_pages.list_pipeline_uuids()
        missing = small_pages.missing_pipelines([mage_server.pipeline_uuid, "hc_no_such_pipeline"])
    assert mage_server.pipeline_uuid in every
    assert paged == every == sorted(every)
    assert missing == ["hc_no_such_pipeline"]


def test_backfills_of_several_pipelines_are_those_of_each(backfills: Factory, mage_server: MageServer):
    made = {backfills.create(f"of-{n}").id for n in range(3)}
    listed = backfills.api.list_backfills_of([mage_server.pipeline_uuid, "hc_no_such_pipeline"])
    assert set(listed) == {mage_server.pipeline_uuid, "hc_no_such_pipeline"}
    assert made <= {row.id for row in listed[mage_server.pipeline_uuid]}
    assert {row.pipeline_uuid for row in listed[mage_server.pipeline_uuid]} == {mage_server.pipeline_uuid}
    assert listed["hc_no_such_pipeline"] == []


def test_creating_in_a_missing_pipeline_names_it(client: MageClient):
    with pytest.raises(ApiError) as caught:
        client.create_backfill("hc_no_such_pipeline", BackfillFields(name="x"))
    message = str(caught.value)
    assert "hc_no_such_pipeline does not exist" in message
    assert "Traceback" not in message
    assert "\n" not in message


def test_a_missing_backfill_reads_as_none(client: MageClient):
    assert client.get_backfill(987654321) is None
    assert client.get_backfill(987654321, include_run_count=True) is None


def test_delete_removes_the_backfill(backfills: Factory):
    created = backfills.create("doomed", **three_days())
    backfills.api.delete_backfill(backfills.pipeline_uuid, created.id)
    assert backfills.api.get_backfill(created.id) is None


def test_run_counts_only_for_sane_schedules(backfills: Factory):
    three = backfills.create("three", **three_days())
    six = backfills.create("six", **{**three_days(), "interval_type": "hour", "interval_units": 8})
    bare = backfills.create("bare")
    counts = backfills.api.run_counts([three, six, bare])
    assert {key: value.total for key, value in counts.items()} == {three.id: 3, six.id: 7}
    assert bare.id not in counts


def test_get_with_run_count_skips_the_flag_for_an_unset_schedule(backfills: Factory):
    bare = backfills.create("bare")
    assert fetch(backfills.api, bare.id, include_run_count=True).total_run_count is None
    full = backfills.create("full", **three_days())
    assert fetch(backfills.api, full.id, include_run_count=True).total_run_count == 3


def test_cancelling_a_never_started_backfill_is_accepted(backfills: Factory):
    created = backfills.create("never-started", **three_days())
    cancelled = backfills.api.set_status(backfills.pipeline_uuid, created.id, "cancelled")
    assert cancelled.status == "cancelled"
    assert fetch(backfills.api, created.id).status == "cancelled"


def test_starting_creates_one_run_per_date_and_finishes(backfills: Factory, mage_server: MageServer):
    created = backfills.create("start", **three_days())
    started = backfills.api.set_status(backfills.pipeline_uuid, created.id, "initial")
    assert started.status in ("initial", "running", "completed")
    assert started.started_at is not None
    if mage_server.can_inject_faults:
        mage_server.complete_runs(created.id)
    finished = wait_for(
        lambda: fetch(backfills.api, created.id, include_run_count=True),
        lambda live: live.status in ("completed", "failed"),
    )
    assert finished.status == "completed"
    assert finished.total_run_count == 3
    assert finished.run_status_counts == {"completed": 3}


# Mage's scheduler reads a trigger's `initial` runs at the start of a tick and writes `running` over them
# later in the same tick, so a cancel that lands in between is overwritten and that run goes on to run.
# A trigger made with pipeline_run_limit 0 starts none of its runs (schedule_all's quota is 0), so every
# run is still unfinished when the cancel lands, however fast or slow the scheduler is.
HOLD_RUNS = {"pipeline_run_limit": 0}


def test_cancelling_a_started_backfill_stops_its_runs(backfills: Factory):
    window = {**three_days(), "end_datetime": JAN_1 + timedelta(days=9)}
    created = backfills.create("cancel", **window, settings=HOLD_RUNS)
    backfills.api.set_status(backfills.pipeline_uuid, created.id, "initial")
    started = fetch(backfills.api, created.id, include_run_count=True)
    assert started.run_status_counts == {"initial": 10}
    cancelled = backfills.api.set_status(backfills.pipeline_uuid, created.id, "cancelled")
    assert cancelled.status == "cancelled"
    counts = fetch(backfills.api, created.id, include_run_count=True)
    assert counts.total_run_count == 10
    assert counts.run_status_counts == {"cancelled": 10}
