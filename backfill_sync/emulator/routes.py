"""Mage's URL map, and how every request becomes a response (auth, dispatch, error rendering)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from backfill_sync.emulator import backfills, handlers, pipeline_runs
from backfill_sync.emulator.apierrors import AuthFailure, HandledError, ServerError
from backfill_sync.emulator.auth import authenticate
from backfill_sync.emulator.context import Context
from backfill_sync.emulator.state import Store
from backfill_sync.emulator.wire import Request, Response

Handler = Callable[[Context, Request, dict[str, str]], Response]

_SEGMENT = r"(?P<{}>[^/]+)"
_PIPELINE = _SEGMENT.format("pipeline")
_ID = _SEGMENT.format("id")


@dataclass(frozen=True, slots=True)
class Route:
    pattern: re.Pattern[str]
    methods: dict[str, Handler]


def _route(path: str, **methods: Handler) -> Route:
    return Route(re.compile(f"^{path}$"), methods)


ROUTES = (
    _route("/api/sessions", POST=lambda c, r, p: handlers.create_session(c, r)),
    _route("/api/status", GET=lambda c, r, p: handlers.show_status(c, r)),
    _route(
        "/api/pipelines",
        GET=lambda c, r, p: handlers.list_pipelines(c, r),
        POST=lambda c, r, p: handlers.create_pipeline(c, r),
    ),
    _route(f"/api/pipelines/{_PIPELINE}", GET=lambda c, r, p: handlers.show_pipeline(c, r, p["pipeline"])),
    _route(
        f"/api/pipelines/{_PIPELINE}/blocks", POST=lambda c, r, p: handlers.create_block(c, r, p["pipeline"])
    ),
    _route(
        f"/api/pipelines/{_PIPELINE}/backfills",
        GET=lambda c, r, p: backfills.list_backfills(c, r, p["pipeline"]),
        POST=lambda c, r, p: backfills.create_backfill(c, r, p["pipeline"]),
    ),
    _route(
        f"/api/pipelines/{_PIPELINE}/backfills/{_ID}",
        GET=lambda c, r, p: backfills.show_backfill(c, r, p["pipeline"], p["id"]),
        PUT=lambda c, r, p: backfills.update_backfill(c, r, p["pipeline"], p["id"]),
        DELETE=lambda c, r, p: backfills.delete_backfill(c, r, p["pipeline"], p["id"]),
    ),
    _route(
        "/api/backfills",
        GET=lambda c, r, p: backfills.list_backfills(c, r, None),
        POST=lambda c, r, p: backfills.create_backfill(c, r, None),
    ),
    _route(
        f"/api/backfills/{_ID}",
        GET=lambda c, r, p: backfills.show_backfill(c, r, None, p["id"]),
        PUT=lambda c, r, p: backfills.update_backfill(c, r, None, p["id"]),
        DELETE=lambda c, r, p: backfills.delete_backfill(c, r, None, p["id"]),
    ),
    _route("/api/pipeline_runs", GET=lambda c, r, p: pipeline_runs.list_pipeline_runs(c, r)),
    _route(
        f"/api/pipeline_runs/{_ID}",
        GET=lambda c, r, p: pipeline_runs.show_pipeline_run(c, r, p["id"]),
        PUT=lambda c, r, p: pipeline_runs.update_pipeline_run(c, r, p["id"]),
    ),
    _route(
        f"/api/pipeline_schedules/{_ID}",
        GET=lambda c, r, p: pipeline_runs.show_pipeline_schedule(c, r, p["id"]),
        PUT=lambda c, r, p: pipeline_runs.update_pipeline_schedule(c, r, p["id"]),
    ),
    _route(
        f"/api/pipeline_schedules/{_ID}/pipeline_runs",
        GET=lambda c, r, p: pipeline_runs.list_pipeline_runs(c, r, p["id"]),
        POST=lambda c, r, p: pipeline_runs.create_pipeline_run(c, r, p["id"]),
    ),
    _route("/api/projects", GET=lambda c, r, p: pipeline_runs.list_projects(c, r)),
)


def handle_api(request: Request, store: Store, *, auth_on: bool) -> Response:
    """One Mage API request, start to finish. Never raises for anything Mage would answer."""
    route, params = match_route(request.path)
    if route is None:
        return Response(404, b"")
    handler = route.methods.get(request.method)
    if handler is None:
        return Response(405, b"")  # tornado's answer, e.g. to PATCH
    try:
        identity = authenticate(request, store, auth_on)
        return handler(Context(store, identity), request, params)
    except AuthFailure as failure:
        return Response(
            401, {"error": {"code": 401, "message": failure.message, "type": failure.type}, "status": 200}
        )
    except HandledError as error:
        return render_handled(request, error)
    except ServerError as error:
        return Response(200, render_server_error(request, error))


def match_route(path: str) -> tuple[Route | None, dict[str, str]]:
    for route in ROUTES:
        found = route.pattern.match(path)
        if found:
            return route, {key: unquote(value) for key, value in found.groupdict().items()}
    return None, {}


def render_handled(request: Request, error: HandledError) -> Response:
    """403/404 come as HTTP 200 unless `_http_error_codes=true` asks for the real status."""
    status = error.code if request.first("_http_error_codes") == "true" else 200
    body = {"error": {"code": error.code, "message": error.message, "type": error.type}, "status": status}
    return Response(status, body)


def render_server_error(request: Request, error: ServerError) -> dict[str, object]:
    """Mage's write_error: HTTP 200 always, a traceback in `message` and its frames in `errors`."""
    frames = [
        '  File "/emulator/tornado/web.py", line 1790, in _execute\n    result = await result\n',
        '  File "/emulator/mage_ai/server/api/v1.py", line 14, in get\n'
        "    return await execute_operation(...)\n",
        '  File "/emulator/mage_ai/api/views.py", line 64, in execute_operation\n'
        "    response = await base_operation.execute()\n",
        '  File "/emulator/mage_ai/api/operations/base.py", line 93, in execute\n'
        "    result = await self.__executed_result()\n",
    ]
    message = (
        "Traceback (most recent call last):\n" + "".join(frames) + f"{error.exc_class}: {error.exception}\n"
    )
    return {
        "error": {"code": 500, "errors": frames, "exception": error.exception, "message": message},
        "url_parameters": url_parameters(request.path),
    }


def url_parameters(path: str) -> dict[str, str]:
    names = ("resource", "pk", "child", "child_pk")
    parts = [unquote(part) for part in path.removeprefix("/api/").split("/") if part]
    return dict(zip(names, parts, strict=False))
