"""The resources around backfills: sessions, pipelines and blocks, status."""

from __future__ import annotations

import json
import re
from typing import Any

from backfill_sync.emulator.apierrors import LOGIN_FAILED, ServerError, not_found
from backfill_sync.emulator.auth import issue_token, require_anonymous, require_user
from backfill_sync.emulator.context import Context
from backfill_sync.emulator.presenters import present_pipeline, present_user
from backfill_sync.emulator.state import PipelineRow
from backfill_sync.emulator.values import format_datetime, parse_int
from backfill_sync.emulator.wire import Request, Response, ok


def body_object(request: Request, key: str) -> dict[str, Any]:
    try:
        body = request.json_body()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ServerError(str(exc), type(exc).__name__) from None
    if not isinstance(body, dict):
        raise ServerError(f"'{type(body).__name__}' object has no attribute 'get'", "AttributeError")
    inner = body.get(key) or {}
    return inner if isinstance(inner, dict) else {}


def create_session(ctx: Context, request: Request) -> Response:
    session = body_object(request, "session")
    require_anonymous(ctx.identity, "create")
    login = session.get("email") or session.get("username") or ""
    password = session.get("password")
    with ctx.store.lock:
        # Every password login rewrites Mage's shared 404 message (mage-api.md §6, hazard 4).
        ctx.store.not_found_message = LOGIN_FAILED
        user = ctx.store.user_by_login(str(login))
    if user is None or user.password != password:
        raise not_found(LOGIN_FAILED)
    token, expires = issue_token(ctx.store, user)
    return ok(
        {
            "session": {
                "expires": format_datetime(expires),
                "token": token,
                "user": present_user(user, ctx.store.roles_created_at),
            },
            "metadata": None,
        }
    )


def show_status(ctx: Context, request: Request) -> Response:
    status = {
        "is_instance_manager": False,
        "scheduler_status": "running",
        "instance_type": None,
        "require_user_authentication": ctx.identity.auth_on,
        "require_user_permissions": False,
        "project_type": "standalone",
        "emulator": True,
    }
    return ok({"statuses": [status], "metadata": {}})


def list_pipelines(ctx: Context, request: Request) -> Response:
    """PipelineResource.collection: sorted by uuid, `_offset` then `limit+1` rows, but only when `_limit`
    is truthy: without it (or with 0) every pipeline comes, and `next` is the falsy limit itself."""
    require_user(ctx.identity, "list")
    given = request.first("_limit")
    limit = parse_int(given) if given else None
    offset = parse_int(request.first("_offset") or "0")
    with ctx.store.lock:
        pipelines = sorted(ctx.store.pipelines.values(), key=lambda pipeline: pipeline.uuid)
        count = len(pipelines)
        if offset:
            pipelines = pipelines[offset:]
        if limit:
            pipelines = pipelines[: limit + 1]
        more = limit is not None and limit != 0 and len(pipelines) > limit
        page = pipelines[: len(pipelines) - 1] if more else pipelines
        items = [present_pipeline(p) for p in page]
    metadata = {"count": count, "results": len(items), "next": more if limit else limit}
    return ok({"pipelines": items, "metadata": metadata})


def show_pipeline(ctx: Context, request: Request, uuid: str) -> Response:
    require_user(ctx.identity, "detail")
    return ok({"pipeline": present_pipeline(ctx.pipeline(uuid)), "metadata": None})


def create_pipeline(ctx: Context, request: Request) -> Response:
    require_user(ctx.identity, "create")
    spec = body_object(request, "pipeline")
    name = str(spec.get("name") or "")
    uuid = clean_name(name)
    with ctx.store.lock:
        if uuid in ctx.store.pipelines:
            raise ServerError(f"Pipeline {uuid} already exists.")
        pipeline = PipelineRow(uuid=uuid, name=name, type=str(spec.get("type") or "python"))
        ctx.store.pipelines[uuid] = pipeline
    return ok({"pipeline": present_pipeline(pipeline), "metadata": None})


def clean_name(name: str) -> str:
    """Mage derives a pipeline's uuid from its name: lower case, runs of other characters → `_`."""
    return re.sub(r"[^a-z0-9_]+", "_", name.strip().lower())


def create_block(ctx: Context, request: Request, uuid: str) -> Response:
    require_user(ctx.identity, "create")
    pipeline = ctx.pipeline(uuid)
    spec = body_object(request, "block")
    name = str(spec.get("name") or "block")
    block = {
        "name": name,
        "language": spec.get("language", "python"),
        "status": "updated",
        "type": spec.get("type", "custom"),
        "upstream_blocks": [],
        "uuid": clean_name(name),
    }
    with ctx.store.lock:
        pipeline.blocks.append(block)
    return ok({"block": block, "metadata": None})
