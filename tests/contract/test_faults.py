"""MageClient under injected faults (emulator only): retries where safe, read-back where not."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from backfill_sync.client import Backoff, MageClient
from backfill_sync.errors import ApiError, AuthError, UnknownOutcome
from backfill_sync.models import BackfillFields, JsonObject, MageConnection
from backfill_sync.transport import MageSession
from tests.contract.conftest import Factory, Recorder, fetch
from tests.contract.servers import MageServer

ONE_ID = r"^/api/pipelines/[^/]+/backfills/\d+$"
CREATE = r"^/api/pipelines/[^/]+/backfills$"
FIELDS = BackfillFields(
    start_datetime=datetime(2024, 1, 1, tzinfo=UTC),
    end_datetime=datetime(2024, 1, 3, tzinfo=UTC),
    interval_type="day",
    interval_units=1,
)
MAGE_500 = {
    "code": 500,
    "exception": "boom: the server tripped",
    "message": 'Traceback (most recent call last):\n  File "/srv/mage_ai/x.py", line 1\nValueError: boom',
    "errors": ['  File "/srv/mage_ai/x.py", line 1'],
}


@pytest.fixture
def server(emulator_server: MageServer) -> Iterator[MageServer]:
    emulator_server.clear_faults()
    yield emulator_server
    emulator_server.clear_faults()


@pytest.fixture
def api(server: MageServer, pauses: Recorder) -> Iterator[MageClient]:
    with MageClient(server.connection("owner"), timeout=5.0, backoff=Backoff(sleep=pauses)) as client:
        yield client


@pytest.fixture
def made(api: MageClient, server: MageServer) -> Iterator[Factory]:
    factory = Factory(api, server.pipeline_uuid)
    yield factory
    server.clear_faults()
    factory.clean_up()


class Requests:
    """The emulator's request log from a mark onwards, counted by method and path pattern."""

    def __init__(self, server: MageServer) -> None:
        self.server = server
        self.start = len(server.requests())

    def count(self, method: str, pattern: str, query: str = "") -> int:
        since = self.server.requests()[self.start :]
        return sum(
            1
            for entry in since
            if entry["method"] == method
            and re.search(pattern, entry["path"])
            and query in str(entry["query"])
        )


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"kind": "status", "status": 502}, id="502"),
        pytest.param({"kind": "status", "status": 503}, id="503"),
        pytest.param({"kind": "drop_before"}, id="reset-before-handling"),
        pytest.param({"kind": "drop_after"}, id="reset-after-handling"),
    ],
)
def test_a_field_put_is_retried_and_succeeds(server, made, pauses, fault: JsonObject):
    live = made.create("retry")
    log = Requests(server)
    server.inject(method="PUT", path=ONE_ID, times=1, **fault)
    updated = made.api.update_backfill(server.pipeline_uuid, live.id, BackfillFields(name=made.name("after")))
    assert updated.name == made.name("after")
    assert log.count("PUT", ONE_ID) == 2
    assert len(pauses.pauses) == 1


@pytest.mark.parametrize(
    ("retry_after", "expected_pause"),
    [pytest.param(7, 7.0, id="honoured"), pytest.param(1000, 30.0, id="capped")],
)
def test_429_waits_as_told_within_a_cap(server, made, pauses, retry_after: int, expected_pause: float):
    live = made.create("throttled")
    server.inject(
        method="GET",
        path=r"^/api/backfills/\d+$",
        times=1,
        kind="status",
        status=429,
        retry_after=retry_after,
    )
    assert fetch(made.api, live.id).id == live.id
    assert pauses.pauses == [expected_pause]


def test_reads_give_up_after_the_retries_with_growing_pauses(server, api, pauses):
    log = Requests(server)
    server.inject(method="GET", path=r"^/api/backfills/\d+$", times=10, kind="status", status=503)
    with pytest.raises(ApiError) as caught:
        api.get_backfill(1)
    assert caught.value.code == 503  # not read as "missing": only a 404 is
    assert log.count("GET", r"^/api/backfills/\d+$") == 4
    assert len(pauses.pauses) == 3
    assert all(
        ceiling / 2 <= pause <= ceiling for pause, ceiling in zip(pauses.pauses, [0.5, 1.0, 2.0], strict=True)
    )


def test_a_slow_read_times_out_and_is_retried(server, made, pauses):
    live = made.create("slow")
    log = Requests(server)
    server.inject(method="GET", path=r"^/api/backfills/\d+$", times=1, kind="latency", seconds=1.5)
    with MageClient(server.connection("owner"), timeout=0.5, backoff=Backoff(sleep=pauses)) as quick:
        assert fetch(quick, live.id).id == live.id
    assert log.count("GET", r"^/api/backfills/\d+$") == 2


def test_a_create_whose_answer_was_lost_is_found_not_repeated(server, made):
    log = Requests(server)
    server.inject(method="POST", path=CREATE, times=1, kind="drop_after")
    created = made.create("lost-answer", interval_type="day")
    assert log.count("POST", CREATE) == 1
    assert [row.id for row in made.mine()] == [created.id]
    assert created.interval_type == "day"


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"kind": "drop_before"}, id="reset-before-handling"),
        pytest.param({"kind": "status", "status": 502}, id="502"),
    ],
)
def test_a_create_that_did_not_happen_is_reported_not_repeated(server, made, fault: JsonObject):
    log = Requests(server)
    server.inject(method="POST", path=CREATE, times=1, **fault)
    with pytest.raises(UnknownOutcome) as caught:
        made.create("not-made")
    assert log.count("POST", CREATE) == 1
    assert made.mine() == []
    assert made.name("not-made") in str(caught.value)


def test_a_start_whose_answer_was_lost_is_confirmed_not_repeated(server, made):
    live = made.create("start-lost", **_schedule())
    log = Requests(server)
    server.inject(method="PUT", path=ONE_ID, times=1, kind="drop_after")
    started = made.api.set_status(server.pipeline_uuid, live.id, "initial")
    assert started.status in ("initial", "running", "completed")
    assert log.count("PUT", ONE_ID) == 1


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"kind": "drop_before"}, id="reset-before-handling"),
        pytest.param({"kind": "status", "status": 502}, id="502"),
    ],
)
def test_a_start_that_did_not_happen_is_reported_not_repeated(server, made, fault: JsonObject):
    live = made.create("start-not", **_schedule())
    log = Requests(server)
    server.inject(method="PUT", path=ONE_ID, times=1, **fault)
    with pytest.raises(UnknownOutcome) as caught:
        made.api.set_status(server.pipeline_uuid, live.id, "initial")
    assert log.count("PUT", ONE_ID) == 1
    assert fetch(made.api, live.id).status is None
    assert f"backfill {live.id}" in str(caught.value)


def test_a_cancel_whose_answer_was_lost_is_confirmed_not_repeated(server, made):
    live = made.create("cancel-lost", **_schedule())
    made.api.set_status(server.pipeline_uuid, live.id, "initial")
    log = Requests(server)
    server.inject(method="PUT", path=ONE_ID, times=1, kind="drop_after")
    assert made.api.set_status(server.pipeline_uuid, live.id, "cancelled").status == "cancelled"
    assert log.count("PUT", ONE_ID) == 1


def test_a_delete_whose_answer_was_lost_is_checked_not_repeated(server, made):
    live = made.create("delete-lost")
    log = Requests(server)
    server.inject(method="DELETE", path=ONE_ID, times=1, kind="drop_after")
    made.api.delete_backfill(server.pipeline_uuid, live.id)
    assert log.count("DELETE", ONE_ID) == 1
    assert made.mine() == []


@pytest.mark.parametrize(
    ("method", "path", "call"),
    [
        pytest.param("GET", r"^/api/backfills/\d+$", lambda api, live: fetch(api, live.id), id="read"),
        pytest.param(
            "PUT",
            ONE_ID,
            lambda api, live: api.update_backfill(live.pipeline_uuid, live.id, BackfillFields(name="x")),
            id="field-put",
        ),
    ],
)
def test_a_500_error_body_is_a_short_error_and_not_retried(
    server, made, method: str, path: str, call: Callable[[MageClient, Any], Any]
):
    live = made.create("error-body")
    log = Requests(server)
    server.inject(method=method, path=path, times=1, kind="error_body", error=MAGE_500)
    with pytest.raises(ApiError) as caught:
        call(made.api, live)
    message = str(caught.value)
    assert "error 500" in message
    assert "boom: the server tripped" in message
    assert "Traceback" not in message
    assert "/srv/mage_ai" not in message
    assert log.count(method, path) == 1


def test_a_403_error_body_is_an_auth_error(server, made):
    live = made.create("forbidden")
    error = {
        "code": 403,
        "message": "Unauthorized operation detail on backfills.",
        "type": "unauthorized_access",
    }
    server.inject(method="GET", path=r"^/api/backfills/\d+$", times=1, kind="error_body", error=error)
    with pytest.raises(AuthError, match="Unauthorized operation detail"):
        fetch(made.api, live.id)


def test_listing_with_rows_added_mid_listing_returns_each_backfill_once(server, made, pauses):
    for n in range(16):
        made.create(f"page-{n}")
    inserted = 5

    def arm() -> None:
        server.inject(
            method="GET", path=r"^/api/backfills$", times=1, kind="insert_backfills", count=inserted
        )

    before = {row.id for row in made.api.list_backfills(server.pipeline_uuid)}
    log = Requests(server)
    with ArmsAfterFirstPage(server.connection("owner"), arm=arm, page_size=5) as lister:
        listed = [row.id for row in lister.list_backfills(server.pipeline_uuid)]
    after = {row.id for row in made.api.list_backfills(server.pipeline_uuid)}
    try:
        assert len(after) == len(before) + inserted
        assert math.ceil(len(after) / 5) > 3
        assert len(listed) == len(set(listed))
        assert set(listed) == after
        one_pass = math.ceil(len(after) / 5)
        assert log.count("GET", r"^/api/backfills$") > one_pass  # it noticed and listed again
    finally:
        for backfill_id in after - before:
            made.api.delete_backfill(server.pipeline_uuid, backfill_id)


def test_run_counts_of_many_backfills_are_fetched_once_each(server, made):
    rows = [made.create(f"count-{n}", **_schedule()) for n in range(12)]
    log = Requests(server)
    counts = made.api.run_counts(rows)
    assert {key: value.total for key, value in counts.items()} == {row.id: 3 for row in rows}
    assert log.count("GET", r"^/api/backfills/\d+$", "include_run_count") == 12
    assert log.count("GET", r"^/api/backfills$") == 0


class ArmsAfterFirstPage(MageClient):
    """A client that arms a fault once its first list page is in: rows then move mid-listing."""

    def __init__(self, connection: MageConnection, *, arm: Callable[[], None], page_size: int) -> None:
        super().__init__(connection, page_size=page_size, session=_ArmingSession(connection, arm))


class _ArmingSession(MageSession):
    def __init__(self, connection: MageConnection, arm: Callable[[], None]) -> None:
        super().__init__(connection)
        self._arm: Callable[[], None] | None = arm

    def call(self, method: str, path: str, **kwargs: Any) -> JsonObject:
        answer = super().call(method, path, **kwargs)
        if path == "/api/backfills" and self._arm is not None:
            arm, self._arm = self._arm, None
            arm()
        return answer


def _schedule() -> dict[str, Any]:
    return {
        "start_datetime": FIELDS.start_datetime,
        "end_datetime": FIELDS.end_datetime,
        "interval_type": FIELDS.interval_type,
        "interval_units": FIELDS.interval_units,
    }
