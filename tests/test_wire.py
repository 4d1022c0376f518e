"""Mage's wire format mapped to value types and errors: pure, no network."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from backfill_sync.client import RETRY_AFTER_CAP, Backoff
from backfill_sync.models import BackfillFields, RunCounts
from backfill_sync.wire import (
    backfill_from_wire,
    error_from_body,
    fields_to_wire,
    missing_pipeline,
    raw_token,
    run_counts_of,
)

ROW: dict[str, Any] = {
    "block_uuid": None,
    "completed_at": None,
    "created_at": "2026-11-22 20:07:34",
    "end_datetime": "2024-01-05 00:00:00",
    "failed_at": None,
    "interval_type": "day",
    "interval_units": 1,
    "metrics": None,
    "name": "bf1",
    "pipeline_schedule_id": None,
    "pipeline_uuid": "bf_test",
    "settings": None,
    "start_datetime": "2024-01-01 00:00:00",
    "started_at": None,
    "status": None,
    "updated_at": "2026-11-22 20:07:34",
    "variables": {"a": 1},
    "id": 1,
}


def jwt_with(claims: dict[str, Any]) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("fields", "wire"),
    [
        pytest.param(BackfillFields(), {}, id="nothing-set-sends-nothing"),
        pytest.param(BackfillFields(name="n"), {"name": "n"}, id="name-only"),
        pytest.param(
            BackfillFields(
                start_datetime=datetime(2024, 3, 1, 2, tzinfo=timezone(timedelta(hours=2))),
                end_datetime=datetime(2024, 3, 2, 0, 0, 0, 123456, tzinfo=UTC),
            ),
            {"start_datetime": "2024-03-01 00:00:00", "end_datetime": "2024-03-02 00:00:00.123456"},
            id="datetimes-converted-to-utc",
        ),
        pytest.param(
            BackfillFields(interval_type="custom", interval_units=5400, variables={}, settings={"x": True}),
            {"interval_type": "custom", "interval_units": 5400, "variables": {}, "settings": {"x": True}},
            id="empty-variables-are-sent",
        ),
    ],
)
def test_fields_to_wire(fields: BackfillFields, wire: dict[str, Any]):
    assert fields_to_wire(fields) == wire


def test_a_full_row_is_read():
    live = backfill_from_wire(ROW)
    assert (live.id, live.name, live.pipeline_uuid, live.status) == (1, "bf1", "bf_test", None)
    assert live.start_datetime == datetime(2024, 1, 1, tzinfo=UTC)
    assert live.created_at == datetime(2026, 11, 22, 20, 7, 34, tzinfo=UTC)
    assert live.variables == {"a": 1}
    assert live.total_run_count is None
    assert live.raw == {}  # only what could not be read is kept as sent


def test_a_datetime_that_does_not_parse_is_kept_as_sent():
    live = backfill_from_wire({**ROW, "start_datetime": "not-a-date", "end_datetime": ""})
    assert (live.start_datetime, live.end_datetime) == (None, None)
    assert live.raw == {"start_datetime": "not-a-date"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2024-01-01 00:00:00", datetime(2024, 1, 1, tzinfo=UTC), id="sqlite"),
        pytest.param(
            "2024-03-02 00:00:00.123456", datetime(2024, 3, 2, 0, 0, 0, 123456, tzinfo=UTC), id="micro"
        ),
        pytest.param("2024-01-01 00:00:00+00:00", datetime(2024, 1, 1, tzinfo=UTC), id="postgres"),
        pytest.param("2024-01-01 02:00:00+02:00", datetime(2024, 1, 1, tzinfo=UTC), id="offset"),
        pytest.param("2024-05-03T00:00:00", datetime(2024, 5, 3, tzinfo=UTC), id="iso-t"),
        pytest.param("garbage", None, id="junk-is-none"),
        pytest.param(None, None, id="null"),
    ],
)
def test_every_datetime_form_mage_sends_is_read(text: str | None, expected: datetime | None):
    assert backfill_from_wire({**ROW, "start_datetime": text}).start_datetime == expected


@pytest.mark.parametrize(
    ("interval_type", "interval_units", "kept_type", "kept_units"),
    [
        pytest.param("DAY", 1, "day", 1, id="upper-case-enum-name"),
        pytest.param("Fortnight", 1, "fortnight", 1, id="unknown-type-kept-lower"),
        pytest.param("day", "abc", "day", "abc", id="junk-units-kept"),
        pytest.param("day", 1.7, "day", 1.7, id="float-units-kept"),
        pytest.param(None, None, None, None, id="unset"),
    ],
)
def test_junk_is_kept_as_mage_stored_it(interval_type, interval_units, kept_type, kept_units):
    live = backfill_from_wire({**ROW, "interval_type": interval_type, "interval_units": interval_units})
    assert (live.interval_type, live.interval_units) == (kept_type, kept_units)
    assert live.schedule() is None or (kept_type, kept_units) == ("day", 1)


def test_run_counts_are_read_when_present():
    live = backfill_from_wire(
        {**ROW, "total_run_count": 5, "run_status_counts": {"completed": 3, "failed": 2}}
    )
    assert run_counts_of(live) == RunCounts(total=5, by_status={"completed": 3, "failed": 2})
    assert run_counts_of(backfill_from_wire(ROW)) is None


@pytest.mark.parametrize(
    ("body", "code", "error_type", "detail"),
    [
        pytest.param(
            {"error": {"code": 403, "message": "Private access for list only, invalid scope.", "type": "x"}},
            403,
            "x",
            "Private access for list only, invalid scope.",
            id="handled-403",
        ),
        pytest.param(
            {
                "error": {
                    "code": 404,
                    "message": "Email/username and/or password invalid.",
                    "type": "record_not_found",
                }
            },
            404,
            "record_not_found",
            "record not found",
            id="404-message-is-global-state",
        ),
        pytest.param(
            {
                "error": {
                    "code": 500,
                    "exception": "Pipeline p does not exist.",
                    "message": "Traceback\n  File x",
                }
            },
            500,
            None,
            "Pipeline p does not exist.",
            id="500-keeps-the-exception-only",
        ),
        pytest.param(
            {"error": {"code": 500, "message": "line one\nline two"}},
            500,
            None,
            "line one",
            id="first-line-only",
        ),
        pytest.param({"error": "weird"}, 0, None, "weird", id="not-an-object"),
    ],
)
def test_error_bodies_become_short_api_errors(body, code, error_type, detail):
    error = error_from_body("GET", "/api/backfills", body)
    assert error is not None
    assert (error.code, error.error_type, error.detail) == (code, error_type, detail)
    assert "Traceback" not in str(error)


@pytest.mark.parametrize(
    "body",
    [pytest.param({"backfills": []}, id="good"), pytest.param(None, id="none"), pytest.param([], id="list")],
)
def test_good_answers_are_not_errors(body: Any):
    assert error_from_body("GET", "/x", body) is None


def test_missing_pipeline_is_recognised_by_its_500():
    body = {"error": {"code": 500, "exception": "Pipeline nope_pipe does not exist."}}
    error = error_from_body("GET", "/api/pipelines/nope_pipe", body)
    assert error is not None
    assert missing_pipeline(error) == "nope_pipe"
    other = error_from_body("GET", "/x", {"error": {"code": 500, "exception": "boom"}})
    assert other is not None
    assert missing_pipeline(other) is None


@pytest.mark.parametrize(
    ("token", "raw"),
    [
        pytest.param(jwt_with({"expires": 1.5, "token": "RAW123"}), "RAW123", id="jwt-reduced"),
        pytest.param("RAW123", "RAW123", id="raw-kept"),
        pytest.param("a.b.c", "a.b.c", id="three-parts-not-a-jwt"),
        pytest.param(jwt_with({"sub": "x"}), jwt_with({"sub": "x"}), id="jwt-without-token-claim"),
    ],
)
def test_raw_token(token: str, raw: str):
    assert raw_token(token) == raw


@pytest.mark.parametrize(
    ("attempt", "retry_after", "low", "high"),
    [
        pytest.param(0, None, 0.25, 0.5, id="first"),
        pytest.param(2, None, 1.0, 2.0, id="third"),
        pytest.param(10, None, 4.0, 8.0, id="capped"),
        pytest.param(0, 3.0, 3.0, 3.0, id="retry-after-honoured"),
        pytest.param(0, 999.0, RETRY_AFTER_CAP, RETRY_AFTER_CAP, id="retry-after-capped"),
        pytest.param(0, -5.0, 0.0, 0.0, id="negative-retry-after"),
    ],
)
def test_backoff_pauses(attempt: int, retry_after: float | None, low: float, high: float):
    slept: list[float] = []
    Backoff(sleep=slept.append).pause(attempt, retry_after)
    assert len(slept) == 1
    assert low <= slept[0] <= high
