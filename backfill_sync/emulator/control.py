"""The emulator's own `/_emulator/...` endpoints: faults, request log, run outcomes, executions, seeding,
reset."""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime
from typing import Any

from backfill_sync.emulator.apierrors import ServerError
from backfill_sync.emulator.backfills import stored_fields
from backfill_sync.emulator.faults import FaultBook, parse_fault
from backfill_sync.emulator.runs import finish_runs
from backfill_sync.emulator.state import PipelineRow, Store
from backfill_sync.emulator.wire import Request, Response

CONTROL_PREFIX = "/_emulator/"
_PIPELINE_IN_PATH = re.compile(r"^/api/pipelines/([^/]+)/")


class RequestLog:
    """Method, path and query of every API request, in arrival order. Never bodies or credentials."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def record(self, request: Request) -> None:
        query = {key: values[0] for key, values in request.query.items() if key != "api_key" and values}
        with self._lock:
            self._entries.append({"method": request.method, "path": request.path, "query": query})

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def handle_control(request: Request, store: Store, faults: FaultBook, log: RequestLog) -> Response:
    action = (request.method, request.path.removeprefix(CONTROL_PREFIX).rstrip("/"))
    try:
        if action == ("POST", "faults"):
            faults.add(parse_fault(_json(request)))
            return Response(200, {"ok": True})
        if action == ("DELETE", "faults"):
            faults.clear()
            return Response(200, {"ok": True})
        if action == ("GET", "requests"):
            return Response(200, {"requests": log.snapshot()})
        if action == ("POST", "runs/complete"):
            return _complete_runs(store, _json(request))
        if action == ("POST", "runs/outcomes"):
            return _set_outcomes(store, _json(request))
        if action == ("GET", "executions"):
            return _executions(store)
        if action == ("POST", "seed"):
            return _seed(store, _json(request))
        if action == ("POST", "reset"):
            store.clear_runs_and_backfills()
            faults.clear()
            log.clear()
            return Response(200, {"ok": True})
    except ValueError as exc:
        return Response(400, {"error": str(exc)})
    return Response(404, {"error": f"no control endpoint {request.method} {request.path}"})


def _json(request: Request) -> Any:
    try:
        return json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"body is not JSON: {exc}") from None


def _complete_runs(store: Store, spec: Any) -> Response:
    if not isinstance(spec, dict) or not isinstance(spec.get("backfill_id"), int):
        raise ValueError("backfill_id (an integer) is required")
    status = spec.get("status", "completed")
    if status not in ("completed", "failed", "auto"):
        raise ValueError("status must be completed, failed or auto (as runs/outcomes says per date)")
    dates = spec.get("dates")
    if dates is not None and (not isinstance(dates, list) or not all(isinstance(d, str) for d in dates)):
        raise ValueError("dates must be a list of dates or datetimes (YYYY-MM-DD[ HH:MM:SS])")
    try:
        only = None if dates is None else {datetime.fromisoformat(date) for date in dates}
    except ValueError as exc:
        raise ValueError(f"dates: {exc}") from None
    changed = finish_runs(store, spec["backfill_id"], None if status == "auto" else status, only)
    return Response(200, {"ok": True, "runs": changed})


def _set_outcomes(store: Store, spec: Any) -> Response:
    """`{"pipeline_uuid": P, "fail_dates": ["2024-01-03", ...]}`: from now on, runs of pipeline P for
    these execution dates fail when they finish; the others complete. `[]` lets every date succeed."""
    if not isinstance(spec, dict) or not isinstance(spec.get("pipeline_uuid"), str):
        raise ValueError("pipeline_uuid (a string) is required")
    dates = spec.get("fail_dates", [])
    if not isinstance(dates, list) or not all(isinstance(date, str) for date in dates):
        raise ValueError("fail_dates must be a list of dates or datetimes (YYYY-MM-DD[ HH:MM:SS])")
    try:
        failing = {datetime.fromisoformat(date) for date in dates}
    except ValueError as exc:
        raise ValueError(f"fail_dates: {exc}") from None
    with store.lock:
        store.fail_dates[spec["pipeline_uuid"]] = failing
    return Response(200, {"ok": True})


def _executions(store: Store) -> Response:
    """How many times each (pipeline, execution date) really ran its block, in date order."""
    with store.lock:
        counted = sorted(store.executions.items(), key=lambda item: (str(item[0][0]), str(item[0][1])))
    rows = [
        {"pipeline_uuid": pipeline, "execution_date": str(date) if date else None, "count": count}
        for (pipeline, date), count in counted
    ]
    return Response(200, {"executions": rows})


def _seed(store: Store, spec: Any) -> Response:
    """`{"pipelines": [uuid, ...], "backfills": [{"pipeline_uuid": P, "status": S, ...fields}]}`: many
    pipelines and backfills at once, as the API would store them (benchmarks need thousands; creating
    them one request at a time would take longer than what they measure). A status is set as is, with
    no runs."""
    if not isinstance(spec, dict):
        raise ValueError("a seed is a JSON object")
    pipelines, backfills = spec.get("pipelines", []), spec.get("backfills", [])
    if not isinstance(pipelines, list) or not all(isinstance(uuid, str) for uuid in pipelines):
        raise ValueError("pipelines must be a list of pipeline uuids")
    if not isinstance(backfills, list) or not all(isinstance(row, dict) for row in backfills):
        raise ValueError("backfills must be a list of objects")
    try:
        rows = [(row.get("pipeline_uuid"), row.get("status"), stored_fields(row)) for row in backfills]
    except ServerError as exc:
        raise ValueError(f"backfills: {exc.exception}") from None
    with store.lock:
        for uuid in pipelines:
            store.pipelines.setdefault(uuid, PipelineRow(uuid=uuid, name=uuid, type="python"))
        ids = [
            store.insert_backfill(pipeline, {**fields, "status": status}).id
            for pipeline, status, fields in rows
        ]
    return Response(200, {"ok": True, "ids": ids})


def pipeline_named_by(request: Request) -> str | None:
    """The pipeline an insert_backfills fault fills: `?pipeline_uuid=`, else the one in the path."""
    named = request.first("pipeline_uuid")
    if named:
        return named
    found = _PIPELINE_IN_PATH.match(request.path + "/")
    return found.group(1) if found else None


def insert_backfills(store: Store, pipeline_uuid: str, count: int) -> None:
    """Backfills created "by someone else" while a client is paging: sane fields, `inserted-<id>` names."""
    with store.lock:
        for _ in range(count):
            row = store.insert_backfill(
                pipeline_uuid,
                {
                    "start_datetime": datetime(2024, 1, 1),
                    "end_datetime": datetime(2024, 1, 3),
                    "interval_type": "DAY",
                    "interval_units": 1,
                },
            )
            row.name = f"inserted-{row.id}"
