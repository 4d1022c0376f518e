"""Mage's wire format: backfill dicts <-> value types, error bodies -> errors, JWT -> raw token. No I/O."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime
from typing import Any

from backfill_sync.datetimes import format_for_mage, parse_mage_datetime
from backfill_sync.errors import ApiError
from backfill_sync.models import BackfillFields, JsonObject, LiveBackfill, RunCounts
from backfill_sync.runs import Run, Trigger

_DATETIME_KEYS = ("start_datetime", "end_datetime")
_MISSING_PIPELINE_RE = re.compile(r"Pipeline (?P<uuid>.+) does not exist\.")


class WireError(ValueError):
    """Mage's answer does not have the shape its API gives; the session names the request it answered."""


def fields_to_wire(fields: BackfillFields) -> JsonObject:
    """The `backfill` object of a POST/PUT: only the fields that are set; datetimes as UTC strings."""
    wire: JsonObject = {}
    for name in BackfillFields.__slots__:
        value = getattr(fields, name)
        if value is None:
            continue
        wire[name] = format_for_mage(value) if name in _DATETIME_KEYS else value
    return wire


def backfill_from_wire(obj: Any) -> LiveBackfill:
    """Read one backfill as Mage sends it, keeping junk values as they are (Mage validates nothing).

    Only what nothing could work without is checked (an object with an integer id, datetimes that exist
    in UTC); WireError says what is wrong. The texts of datetimes that do not parse are kept in `raw`;
    not the whole object (a listing of tens of thousands would be held twice).
    """
    row = _row(obj)
    start, end = _datetime(row, "start_datetime"), _datetime(row, "end_datetime")
    return LiveBackfill(
        id=_id(row),
        pipeline_uuid=_text(row.get("pipeline_uuid")),
        name=_text(row.get("name")),
        start_datetime=start,
        end_datetime=end,
        interval_type=_interval_type(row.get("interval_type")),
        interval_units=row.get("interval_units"),
        variables=_object(row.get("variables")),
        settings=_object(row.get("settings")),
        status=_text(row.get("status")),
        block_uuid=_text(row.get("block_uuid")),
        created_at=_datetime(row, "created_at"),
        started_at=_datetime(row, "started_at"),
        completed_at=_datetime(row, "completed_at"),
        total_run_count=_int_or_none(row.get("total_run_count")),
        run_status_counts=_counts(row.get("run_status_counts")),
        pipeline_schedule_id=_int_or_none(row.get("pipeline_schedule_id")),
        raw={
            name: row[name]
            for name, parsed in (("start_datetime", start), ("end_datetime", end))
            if parsed is None and row.get(name) not in (None, "")
        },
    )


def run_from_wire(obj: Any) -> Run:
    """A pipeline run from a full or a slim (`with_basic_details`) listing."""
    row = _row(obj)
    return Run(
        id=_id(row),
        execution_date=_datetime(row, "execution_date"),
        status=_text(row.get("status")) or "",
        updated_at=_datetime(row, "updated_at"),
    )


def trigger_from_wire(obj: Any) -> Trigger:
    row = _row(obj)
    return Trigger(id=_id(row), status=_text(row.get("status")))


def pipeline_uuid_from_wire(obj: Any) -> str | None:
    """A pipeline's uuid from a pipelines listing; None for one without a usable uuid."""
    return _text(_row(obj).get("uuid"))


def member(answer: JsonObject, key: str) -> JsonObject:
    """The one object an answer carries under `key` (`{"backfill": {...}, "metadata": null}`)."""
    found = answer.get(key)
    if not isinstance(found, dict):
        raise WireError(f"{key} is {describe_value(found)}, not an object")
    return found


def listing_count(page: JsonObject) -> int:
    """`metadata.count` of a listing page: how many rows the whole listing holds."""
    metadata = page.get("metadata")
    if not isinstance(metadata, dict):
        raise WireError(f"metadata is {describe_value(metadata)}, not an object")
    count = metadata.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise WireError(f"metadata.count is {describe_value(count)}, not a number of rows")
    return count


def describe_value(value: Any) -> str:
    """A wrong value named for a message: its type, and its text when short."""
    if value is None:
        return "missing or null"
    if isinstance(value, dict | list):
        return f"a JSON {'object' if isinstance(value, dict) else 'list'}"
    shown = repr(value)
    return f"{type(value).__name__} {shown if len(shown) <= 60 else shown[:57] + '...'}"


def run_counts_of(backfill: LiveBackfill) -> RunCounts | None:
    """The run counts a detail read with `include_run_count` carried, if Mage sent them."""
    if backfill.total_run_count is None:
        return None
    return RunCounts(total=backfill.total_run_count, by_status=dict(backfill.run_status_counts or {}))


def error_from_body(method: str, path: str, body: Any) -> ApiError | None:
    """Mage's `{"error": {...}}` (usually with HTTP 200) as a short ApiError; None for a good answer."""
    if not isinstance(body, dict) or "error" not in body:
        return None
    error = body["error"]
    if not isinstance(error, dict):
        return ApiError(method=method, path=path, code=0, error_type=None, detail=_first_line(str(error)))
    code = _int_or_none(error.get("code")) or 0
    error_type = _text(error.get("type"))
    return ApiError(method=method, path=path, code=code, error_type=error_type, detail=_detail(error))


def missing_pipeline(error: ApiError) -> str | None:
    """The pipeline uuid when the error is Mage's 500 "Pipeline X does not exist."; None otherwise."""
    if error.code != 500:
        return None
    match = _MISSING_PIPELINE_RE.search(error.detail)
    return match.group("uuid") if match else None


def raw_token(token: str) -> str:
    """A JWT from /api/sessions reduced to its `token` claim (Mage refuses the JWT as a Bearer)."""
    parts = token.split(".")
    if len(parts) != 3:
        return token
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError):
        return token
    claim = claims.get("token") if isinstance(claims, dict) else None
    return claim if isinstance(claim, str) and claim else token


def _detail(error: JsonObject) -> str:
    # 404s: the message is global state after a login (mage-api.md §6 hazard 4), so say it plainly.
    if error.get("type") == "record_not_found":
        return "record not found"
    # 500s carry `exception` (one line) and a traceback in `message`; keep only the former.
    for key in ("exception", "message"):
        value = error.get(key)
        if isinstance(value, str) and value.strip():
            return _first_line(value)
    return "no details given"


def _first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0] if stripped else ""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _interval_type(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _row(value: Any) -> JsonObject:
    if not isinstance(value, dict):
        raise WireError(f"a row is {describe_value(value)}, not an object")
    return value


def _id(row: JsonObject) -> int:
    value = row.get("id")
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError(f"id is {describe_value(value)}, not an integer")
    return value


def _datetime(row: JsonObject, key: str) -> datetime | None:
    value = row.get(key)
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_mage_datetime(value)
    except ValueError:
        return None  # junk Mage stored is kept as unknown, like other junk
    except OverflowError:
        raise WireError(f"{key} {value!r} lies outside the years 1 to 9999 once converted to UTC") from None


def _object(value: Any) -> JsonObject | None:
    return value if isinstance(value, dict) else None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _counts(value: Any) -> dict[str, int] | None:
    if not isinstance(value, dict):
        return None
    return {str(key): count for key, count in value.items() if _int_or_none(count) is not None}


# Mage's answer when a stored row holds an interval_type its enum cannot read (mage-api.md §6, hazard 1).
UNREADABLE_ROW_TEXT = "is not among the defined enum values"


def is_unreadable_row(error: ApiError) -> bool:
    """Whether Mage failed on a stored row it cannot read back, rather than for another reason.

    Such a row breaks every listing of its pipeline and cannot be repaired through the API.
    """
    return UNREADABLE_ROW_TEXT in error.detail
