"""Backfill create/list/detail/update/delete as measured on Mage 0.9.80 (mage-api.md §4.3 to §4.7)."""

from __future__ import annotations

import socket
from datetime import datetime
from urllib.parse import urlsplit

import pytest

from tests.emulator.conftest import OTHER_PIPELINE, PIPELINE
from tests.emulator_http import Api

KEYS = [
    "block_uuid",
    "completed_at",
    "created_at",
    "end_datetime",
    "failed_at",
    "interval_type",
    "interval_units",
    "metrics",
    "name",
    "pipeline_schedule_id",
    "pipeline_uuid",
    "settings",
    "start_datetime",
    "started_at",
    "status",
    "updated_at",
    "variables",
    "id",
]
SCHEDULE = {
    "start_datetime": "2024-01-01",
    "end_datetime": "2024-01-05",
    "interval_type": "day",
    "interval_units": 1,
}
CREATE = f"/api/pipelines/{PIPELINE}/backfills"


def exception_of(answer):
    assert answer.status == 200
    assert answer.error["code"] == 500
    assert "type" not in answer.error
    return answer.error["exception"]


def count(owner):
    return owner.get("/api/backfills").body["metadata"]["count"]


def test_create_answers_18_keys_in_mage_order(owner):
    created = owner.create(
        PIPELINE,
        name="bf1",
        start_datetime="2024-01-01T00:00:00Z",
        end_datetime="2024-01-05T00:00:00Z",
        interval_type="day",
        interval_units=1,
    )
    assert list(created) == KEYS
    assert created["status"] is None
    assert created["start_datetime"] == "2024-01-01 00:00:00"
    assert created["pipeline_uuid"] == PIPELINE
    assert datetime.strptime(created["created_at"], "%Y-%m-%d %H:%M:%S")
    assert created["created_at"] == created["updated_at"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param(
            {
                "start_datetime": "2024-03-01T00:00:00+02:00",
                "end_datetime": "2024-03-02T00:00:00.123456+02:00",
            },
            {"start_datetime": "2024-03-01 00:00:00", "end_datetime": "2024-03-02 00:00:00.123456"},
            id="offset-dropped-not-converted",
        ),
        pytest.param(
            {"start_datetime": "2024-02-01 00:00:00", "end_datetime": "2024-02-03", "variables": {"a": 1}},
            {"end_datetime": "2024-02-03 00:00:00", "variables": {"a": 1}},
            id="date-only",
        ),
        pytest.param({"interval_type": "DAY"}, {"interval_type": "day"}, id="enum-name"),
        pytest.param({"interval_units": "2"}, {"interval_units": 2}, id="numeric-text-units"),
        pytest.param({"interval_units": "abc"}, {"interval_units": "abc"}, id="junk-units-kept"),
        pytest.param(
            {
                "foo": "bar",
                "status": "running",
                "id": 999,
                "pipeline_uuid": "other",
                "started_at": "2020-01-01",
            },
            {"status": None, "pipeline_uuid": PIPELINE, "started_at": None},
            id="unknown-and-read-only-ignored",
        ),
    ],
)
def test_create_stores_values_as_sqlite_does(owner, fields, expected):
    created = owner.create(PIPELINE, name="n", **fields)
    assert {key: created[key] for key in expected} == expected
    assert created["id"] != 999


@pytest.mark.parametrize(
    "body",
    [pytest.param({"name": "no-wrapper"}, id="no-wrapper"), pytest.param({"backfill": {}}, id="empty")],
)
def test_create_without_payload_makes_an_all_null_row(owner, body):
    created = owner("POST", CREATE, body).body["backfill"]
    assert [key for key in KEYS if created[key] is not None] == [
        "created_at",
        "pipeline_uuid",
        "updated_at",
        "id",
    ]


def post_cut_short(api: Api, content_length: str, body: bytes) -> bytes:
    """A create whose headers announce `content_length` bytes, then `body`, then a half-close; what
    came back before the server closed the connection."""
    parts = urlsplit(api.url)
    head = [f"POST {CREATE} HTTP/1.1", f"Host: {parts.netloc}", "Content-Type: application/json"]
    head += [f"{name}: {value}" for name, value in api.headers().items()]
    head += [f"Content-Length: {content_length}", "", ""]
    with socket.create_connection((parts.hostname, parts.port), timeout=15) as connection:
        connection.sendall("\r\n".join(head).encode() + body)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    "body", [pytest.param(b"", id="no-body"), pytest.param(b'{"backfill": {"name"', id="part-of-a-body")]
)
def test_a_create_whose_body_never_arrives_does_nothing_and_is_not_answered(owner, body: bytes):
    # Measured on mage-ai 0.9.80 (tornado): no answer, no backfill; left open, the request just waits.
    before = count(owner)
    assert post_cut_short(owner, "50", body) == b""
    assert count(owner) == before


def test_a_content_length_that_is_not_a_number_is_a_400(owner):
    before = count(owner)
    assert post_cut_short(owner, "fifty", b"{}").startswith(b"HTTP/1.1 400 ")
    assert count(owner) == before


def test_an_empty_body_of_length_zero_creates_a_nameless_backfill_as_mage_does(owner):
    # Measured on mage-ai 0.9.80: `Content-Length: 0` is a whole (empty) body, read as `{}`.
    created = owner("POST", CREATE, raw=b"").body["backfill"]
    assert created["name"] is None
    assert created["pipeline_uuid"] == PIPELINE


@pytest.mark.parametrize(
    ("fields", "exception"),
    [
        pytest.param({"start_datetime": "not-a-date"}, "Unknown string format: not-a-date", id="junk-date"),
        pytest.param({"start_datetime": "2024-13-45"}, "month must be in 1..12: 2024-13-45", id="month-13"),
        pytest.param({"start_datetime": 1704067200}, "(builtins.TypeError) SQLite DateTime", id="number"),
    ],
)
def test_create_with_bad_dates_is_a_500_and_saves_nothing(owner, fields, exception):
    answer = owner("POST", CREATE, {"backfill": {"name": "n", **fields}})
    assert exception_of(answer).startswith(exception)
    assert answer.body["url_parameters"] == {"resource": "pipelines", "pk": PIPELINE, "child": "backfills"}
    assert "Traceback" in answer.error["message"]
    assert count(owner) == 0


def test_bad_interval_type_is_saved_and_poisons_the_row(owner):
    """Hazard 1: the 500 comes after the insert; every later read of the row fails."""
    good = owner.create(PIPELINE, name="good")
    answer = owner("POST", CREATE, {"backfill": {"name": "bad", "interval_type": "fortnight"}})
    assert exception_of(answer).startswith(
        "'fortnight' is not among the defined enum values. Enum name: intervaltype."
    )
    assert exception_of(owner.get(f"/api/backfills?pipeline_uuid={PIPELINE}")).startswith("'fortnight'")
    poisoned_id = good["id"] + 1
    for method in ("GET", "PUT", "DELETE"):
        assert exception_of(owner(method, f"/api/backfills/{poisoned_id}", {"backfill": {}})).startswith(
            "'fortnight'"
        )
    assert exception_of(owner.put(good["id"], interval_type="Hour")).startswith("'Hour'")
    assert exception_of(owner.get(f"/api/backfills/{good['id']}")).startswith("'Hour'")


@pytest.mark.parametrize(
    ("method", "path", "raw", "exception"),
    [
        pytest.param(
            "POST",
            "/api/pipelines/nope_pipe/backfills",
            b"{}",
            "Pipeline nope_pipe does not exist.",
            id="post",
        ),
        pytest.param(
            "GET", "/api/pipelines/nope_pipe/backfills", None, "Pipeline nope_pipe does not exist.", id="list"
        ),
        pytest.param(
            "PUT",
            "/api/pipelines/nope_pipe/backfills/1",
            b"{}",
            "Pipeline nope_pipe does not exist.",
            id="put",
        ),
        pytest.param(
            "POST", "/api/backfills", b"{}", "'NoneType' object has no attribute 'uuid'", id="no-parent"
        ),
        pytest.param("POST", CREATE, b"not json", "Expecting value: line 1 column 1 (char 0)", id="not-json"),
        pytest.param(
            "GET",
            "/api/backfills?_limit=abc",
            None,
            "invalid literal for int() with base 10: 'abc'",
            id="limit",
        ),
    ],
)
def test_unhandled_failures_are_500_bodies_in_http_200(owner, method, path, raw, exception):
    assert exception_of(owner(method, path, raw=raw)) == exception


def test_pagination_walk_matches_mage(owner, server):
    ids = [owner.create(PIPELINE, name=f"b{i}")["id"] for i in range(11)]
    with server.store.lock:  # spread them over seconds so created_at DESC has something to sort
        for offset, backfill_id in enumerate(ids):
            server.store.backfills[backfill_id].created_at = datetime(2026, 1, 1, 0, 0, offset // 2)
    pages = []
    for offset in range(0, 13, 3):
        body = owner.get(f"/api/backfills?_limit=3&_offset={offset}&pipeline_uuid={PIPELINE}").body
        pages.append(([b["id"] for b in body["backfills"]], body["metadata"]))
    assert pages == [
        ([11, 9, 10], {"count": 11, "next": True}),
        ([7, 8, 5], {"count": 11, "next": True}),
        ([6, 3, 4], {"count": 11, "next": True}),
        ([1, 2], {"count": 11, "next": False}),
        ([], {"count": 11, "next": False}),
    ]


@pytest.mark.parametrize(
    ("query", "ids", "metadata"),
    [
        pytest.param("", 3, {"count": 3, "next": False}, id="default-limit"),
        pytest.param("_limit=0", 0, {"count": 3, "next": True}, id="limit-0"),
        pytest.param("_limit=-1", 0, {"count": 3, "next": True}, id="limit-negative"),
        pytest.param("_offset=100", 0, {"count": 3, "next": False}, id="offset-past-end"),
        pytest.param("pipeline_uuid=does_not_exist", 0, {"count": 0, "next": False}, id="unknown-pipeline"),
        pytest.param(f"pipeline_uuid={OTHER_PIPELINE}", 1, {"count": 1, "next": False}, id="filter"),
    ],
)
def test_list_queries(owner, query, ids, metadata):
    owner.create(PIPELINE, name="a")
    owner.create(PIPELINE, name="b")
    owner.create(OTHER_PIPELINE, name="c")
    body = owner.get(f"/api/backfills?{query}").body
    assert (len(body["backfills"]), body["metadata"]) == (ids, metadata)


BOTH = sorted([PIPELINE, OTHER_PIPELINE])


@pytest.mark.parametrize(
    ("query", "uuids", "metadata"),
    [
        pytest.param("", BOTH, {"count": 2, "results": 2, "next": None}, id="no-limit"),
        pytest.param("_limit=1", [OTHER_PIPELINE], {"count": 2, "results": 1, "next": True}, id="page-1"),
        pytest.param("_limit=1&_offset=1", [PIPELINE], {"count": 2, "results": 1, "next": False}, id="p2"),
        pytest.param("_limit=0", BOTH, {"count": 2, "results": 2, "next": 0}, id="zero"),
        pytest.param("_limit=-1", [], {"count": 2, "results": 0, "next": True}, id="negative"),
        pytest.param("_offset=5", [], {"count": 2, "results": 0, "next": None}, id="past-the-end"),
    ],
)
def test_pipelines_list_pages_by_uuid_as_mage_does(owner, query, uuids, metadata):
    # Measured on Mage 0.9.80: sorted by uuid; `_limit` only counts when truthy (PipelineResource).
    body = owner.get(f"/api/pipelines?{query}").body
    assert ([p["uuid"] for p in body["pipelines"]], body["metadata"]) == (uuids, metadata)


def test_nested_list_ignores_its_parent(owner):
    owner.create(PIPELINE, name="a")
    assert len(owner.get(f"/api/pipelines/{OTHER_PIPELINE}/backfills").body["backfills"]) == 1


@pytest.mark.parametrize(
    ("flag", "included"),
    [
        pytest.param("include_run_count=true", True, id="true"),
        pytest.param("include_run_count=0", True, id="zero-is-truthy"),
        pytest.param("include_run_count=false", False, id="false"),
        pytest.param("", False, id="absent"),
    ],
)
def test_run_count_keys_follow_the_flag_and_the_fields(owner, flag, included):
    owner.create(PIPELINE, name="null-fields")
    owner.create(PIPELINE, name="bf1", **SCHEDULE)
    rows = {b["name"]: b for b in owner.get(f"/api/backfills?{flag}").body["backfills"]}
    assert "total_run_count" not in rows["null-fields"]
    if included:
        assert list(rows["bf1"])[-2:] == ["total_run_count", "run_status_counts"]
        assert (rows["bf1"]["total_run_count"], rows["bf1"]["run_status_counts"]) == (5, {})
    else:
        assert list(rows["bf1"]) == KEYS


def test_detail_preview_returns_limit_plus_one_dates(owner):
    created = owner.create(
        PIPELINE,
        name="h",
        start_datetime="2024-01-02T06:30:00Z",
        end_datetime="2024-01-04T06:30:00Z",
        interval_type="hour",
        interval_units=6,
    )
    body = owner.get(
        f"/api/backfills/{created['id']}?include_run_count=true&include_preview_runs=true&_limit=3"
    ).body
    backfill = body["backfill"]
    assert backfill["total_run_count"] == 9
    assert len(backfill["pipeline_run_dates"]) == 4
    assert backfill["pipeline_run_dates"][0] == {
        "ds": "2024-01-02",
        "execution_date": "2024-01-02T06:30:00",
        "hr": "06",
        "interval_end_datetime": "2024-01-02T12:30:00",
        "interval_seconds": 21600.0,
        "interval_start_datetime": "2024-01-02T06:30:00",
        "interval_start_datetime_previous": "2024-01-02T00:30:00",
    }


@pytest.mark.parametrize(
    ("fields", "dates"),
    [
        pytest.param(
            {
                "start_datetime": "2024-01-31",
                "end_datetime": "2024-06-30",
                "interval_type": "month",
                "interval_units": 1,
            },
            ["2024-01-31", "2024-02-29", "2024-03-29", "2024-04-29", "2024-05-29", "2024-06-29"],
            id="month-drift",
        ),
        pytest.param(
            {
                "start_datetime": "2024-01-01",
                "end_datetime": "2024-01-01T02:00",
                "interval_type": "custom",
                "interval_units": 5400,
            },
            ["2024-01-01T00:00:00", "2024-01-01T01:30:00"],
            id="custom-seconds",
        ),
    ],
)
def test_preview_dates(owner, fields, dates):
    created = owner.create(PIPELINE, name="p", **fields)
    preview = owner.get(f"/api/backfills/{created['id']}?include_preview_runs=true").body["backfill"]
    got = [entry["execution_date"] for entry in preview["pipeline_run_dates"]]
    assert [date[: len(dates[0])] for date in got] == dates


@pytest.mark.parametrize("pk", ["99999", "abc"])
def test_missing_backfill_is_a_404_in_a_200(owner, pk):
    answer = owner.get(f"/api/backfills/{pk}")
    assert answer.status == 200
    assert answer.error["code"] == 404
    assert answer.error["type"] == "record_not_found"


def test_put_is_partial_and_ignores_nulls_and_unknown_keys(owner):
    created = owner.create(PIPELINE, name="bf1", variables={"x": 1}, **SCHEDULE)
    renamed = owner.put(
        created["id"], name="renamed", variables=None, start_datetime=None, foo="bar", id=777
    ).body
    backfill = renamed["backfill"]
    assert backfill["name"] == "renamed"
    assert backfill["variables"] == {"x": 1}
    assert backfill["start_datetime"] == "2024-01-01 00:00:00"
    assert backfill["id"] == created["id"]
    assert owner.put(created["id"], variables={}).body["backfill"]["variables"] == {}
    no_wrapper = owner("PUT", f"/api/backfills/{created['id']}", {"name": "no-wrapper"}).body["backfill"]
    assert no_wrapper["name"] == "renamed"


def test_put_through_another_pipeline_updates_anyway(owner):
    created = owner.create(PIPELINE, name="bf1")
    answer = owner(
        "PUT", f"/api/pipelines/{OTHER_PIPELINE}/backfills/{created['id']}", {"backfill": {"name": "x"}}
    )
    assert answer.body["backfill"]["pipeline_uuid"] == PIPELINE
    assert answer.body["backfill"]["name"] == "x"


def test_put_bad_date_is_a_500_and_end_before_start_is_accepted(owner):
    created = owner.create(PIPELINE, name="bf1", **SCHEDULE)
    assert (
        exception_of(owner.put(created["id"], start_datetime="garbage")) == "Unknown string format: garbage"
    )
    owner.put(created["id"], start_datetime="2024-02-10", end_datetime="2024-02-01")
    assert (
        owner.get(f"/api/backfills/{created['id']}?include_run_count=true").body["backfill"][
            "total_run_count"
        ]
        == 0
    )


def test_patch_is_405(owner):
    assert owner("PATCH", "/api/backfills/1", {}).status == 405


def test_junk_units_fail_run_counts(owner):
    created = owner.create(PIPELINE, name="u", **{**SCHEDULE, "interval_units": "abc"})
    answer = owner.get(f"/api/backfills/{created['id']}?include_run_count=true")
    assert exception_of(answer) == "unsupported type for timedelta days component: str"


@pytest.mark.parametrize("units", [0, -1])
def test_units_below_one_answer_instead_of_hanging(owner, units):
    """Hazard 2 deviation: Mage would spin forever; the emulator answers a 500 that says so."""
    created = owner.create(PIPELINE, name="u", **SCHEDULE)
    assert owner.put(created["id"], interval_units=units).error is None
    assert "would hang Mage" in exception_of(
        owner.get(f"/api/backfills/{created['id']}?include_run_count=true")
    )
    assert "would hang Mage" in exception_of(owner.get("/api/backfills?include_run_count=true"))
    assert owner.get(f"/api/backfills/{created['id']}").error is None


def test_delete_returns_the_object_and_keeps_its_runs(owner):
    created = owner.create(PIPELINE, name="d", **SCHEDULE)
    owner.put(created["id"], status="initial")
    deleted = owner("DELETE", f"/api/pipelines/{PIPELINE}/backfills/{created['id']}").body
    assert deleted["backfill"]["id"] == created["id"]
    assert deleted["backfill"]["status"] == "initial"
    assert owner("DELETE", f"/api/backfills/{created['id']}").error["code"] == 404
    assert owner.get(f"/api/pipeline_runs?backfill_id={created['id']}").body["metadata"]["count"] == 0
    runs = owner.get("/api/pipeline_runs").body["pipeline_runs"]
    assert [run["backfill_id"] for run in runs] == [None] * 5
