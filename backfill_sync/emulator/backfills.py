"""The backfill resource: list, create, detail, update (with Mage's status side effects), delete."""

from __future__ import annotations

import json
from typing import Any

from backfill_sync.emulator.apierrors import ServerError, not_found
from backfill_sync.emulator.auth import authorize_backfills
from backfill_sync.emulator.context import Context
from backfill_sync.emulator.presenters import present_backfill, present_backfill_with_runs
from backfill_sync.emulator.runs import cancel_backfill, start_backfill
from backfill_sync.emulator.state import BackfillRow
from backfill_sync.emulator.values import (
    enum_lookup_error,
    is_poisoned,
    now_utc_seconds,
    parse_int,
    parse_request_datetime,
    query_flag,
    reject_unstorable_datetime,
    store_interval_type,
    store_interval_units,
)
from backfill_sync.emulator.wire import Request, Response, ok

# BackfillResource.ALLOWED_PAYLOAD_KEYS: everything else in a payload is dropped (for the owner).
ALLOWED_PAYLOAD_KEYS = (
    "block_uuid",
    "end_datetime",
    "interval_type",
    "interval_units",
    "name",
    "settings",
    "start_datetime",
    "variables",
)
DATETIME_KEYS = ("start_datetime", "end_datetime")
DEFAULT_LIMIT = 40


def list_backfills(ctx: Context, request: Request, pipeline: str | None) -> Response:
    if pipeline is not None:
        ctx.pipeline(pipeline)  # must exist, but does not filter (mage-api.md §6, hazard 6)
    authorize_backfills(ctx.identity, "list", request.query)
    limit, offset = page_of(request)
    with ctx.store.lock:
        rows = ctx.store.backfills_newest_first(request.first("pipeline_uuid"))
        fetched = fetch_page(rows, limit, offset)
        has_next = len(fetched) > limit
        page = fetched[: len(fetched) - 1 if has_next else len(fetched)]
        for row in fetched:
            check_readable(row)
        items = [present_with_flags(ctx, request, row, limit, offset) for row in page]
    return ok({"backfills": items, "metadata": {"count": len(rows), "next": has_next}})


def page_of(request: Request) -> tuple[int, int]:
    return (
        parse_int(request.first("_limit") or str(DEFAULT_LIMIT)),
        parse_int(request.first("_offset") or "0"),
    )


def fetch_page(rows: list[BackfillRow], limit: int, offset: int) -> list[BackfillRow]:
    """SQL `LIMIT limit+1 OFFSET offset` on SQLite, where a negative LIMIT means no limit."""
    start = max(offset, 0)
    if limit + 1 < 0:
        return rows[start:]
    return rows[start : start + limit + 1]


def present_with_flags(
    ctx: Context, request: Request, row: BackfillRow, limit: int, offset: int
) -> dict[str, Any]:
    return present_backfill_with_runs(
        ctx.store,
        row,
        run_count=query_flag(request.query, "include_run_count"),
        preview=query_flag(request.query, "include_preview_runs"),
        limit=limit,
        offset=offset,
    )


def create_backfill(ctx: Context, request: Request, pipeline: str | None) -> Response:
    if pipeline is None:
        raise ServerError("'NoneType' object has no attribute 'uuid'", "AttributeError")
    parent = ctx.pipeline(pipeline)
    payload = payload_of(request)
    authorize_backfills(ctx.identity, "create", request.query, payload)
    fields = stored_fields(payload)
    row = ctx.store.insert_backfill(parent.uuid, fields)
    check_readable(row)  # a junk interval_type was saved before the read-back failed (hazard 1)
    return ok({"backfill": present_backfill(row), "metadata": None})


def payload_of(request: Request) -> dict[str, Any]:
    """The `backfill` object of the body; a body without that wrapper counts as an empty payload."""
    try:
        body = request.json_body()
    except json.JSONDecodeError as exc:
        raise ServerError(str(exc), "JSONDecodeError") from None
    except UnicodeDecodeError as exc:
        raise ServerError(str(exc), "UnicodeDecodeError") from None
    if not isinstance(body, dict):
        raise ServerError(f"'{type(body).__name__}' object has no attribute 'get'", "AttributeError")
    payload = body.get("backfill") or {}
    if not isinstance(payload, dict):
        raise ServerError(f"'{type(payload).__name__}' object has no attribute 'items'", "AttributeError")
    return payload


def stored_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """`extract(payload, ALLOWED)` without None values, converted as SQLite stores them. Every refusal
    raises before anything is saved, except a junk interval_type string, which SQLite takes."""
    fields = {key: payload[key] for key in ALLOWED_PAYLOAD_KEYS if payload.get(key) is not None}
    for key in DATETIME_KEYS:
        if key in fields:
            fields[key] = parse_request_datetime(fields[key])
    for key in DATETIME_KEYS:
        reject_unstorable_datetime(fields.get(key))
    if "interval_type" in fields:
        fields["interval_type"] = store_interval_type(fields["interval_type"])
    if "interval_units" in fields:
        fields["interval_units"] = store_interval_units(fields["interval_units"])
    return fields


def check_readable(row: BackfillRow) -> None:
    if is_poisoned(row.interval_type):
        raise enum_lookup_error(row.interval_type)


def load_backfill(ctx: Context, pk: str) -> BackfillRow:
    row = ctx.store.find_backfill(pk)
    if row is None:
        raise not_found(ctx.store.not_found_message)
    check_readable(row)
    return row


def show_backfill(ctx: Context, request: Request, pipeline: str | None, pk: str) -> Response:
    if pipeline is not None:
        ctx.pipeline(pipeline)
    row = load_backfill(ctx, pk)
    authorize_backfills(ctx.identity, "detail", request.query)
    limit, offset = page_of(request)
    with ctx.store.lock:
        data = present_with_flags(ctx, request, row, limit, offset)
    return ok({"backfill": data, "metadata": None})


def update_backfill(ctx: Context, request: Request, pipeline: str | None, pk: str) -> Response:
    if pipeline is not None:
        ctx.pipeline(pipeline)  # checked, never compared with the row's pipeline (hazard 6)
    payload = payload_of(request)
    with ctx.store.lock:
        row = load_backfill(ctx, pk)
        authorize_backfills(ctx.identity, "update", request.query, payload)
        for key in DATETIME_KEYS:  # the operation layer parses before the resource sees the payload
            if key in payload:
                parse_request_datetime(payload[key])
        apply_update(ctx, row, payload)
        check_readable(row)
        data = present_backfill(row)
    return ok({"backfill": data, "metadata": None})


def apply_update(ctx: Context, row: BackfillRow, payload: dict[str, Any]) -> None:
    """BackfillResource.update: a changed status of initial/cancelled acts alone and drops the other
    fields; any other status string is ignored and the fields are applied (mage-api.md §4.6)."""
    status = payload.get("status")
    if "status" in payload and status != row.status:
        if status == "initial":
            start_backfill(ctx.store, row)
            return
        if status == "cancelled":
            cancel_backfill(ctx.store, row)
            return
    fields = stored_fields(payload)
    for key, value in fields.items():
        setattr(row, key, value)
    row.updated_at = now_utc_seconds()


def delete_backfill(ctx: Context, request: Request, pipeline: str | None, pk: str) -> Response:
    if pipeline is not None:
        ctx.pipeline(pipeline)
    with ctx.store.lock:
        row = load_backfill(ctx, pk)
        authorize_backfills(ctx.identity, "delete", request.query)
        data = present_backfill(row)
        ctx.store.delete_backfill(row)  # its runs stay, with backfill_id NULL
    return ok({"backfill": data, "metadata": None})
