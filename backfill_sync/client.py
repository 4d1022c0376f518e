"""MageClient: the one module speaking HTTP to Mage (auth, paging, retries, read-back after lost answers)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from backfill_sync.errors import ApiError, AuthError, ConnectionFailed, MageError, UnknownOutcome
from backfill_sync.models import (
    BackfillFields,
    JsonObject,
    LiveBackfill,
    MageConnection,
    RunCounts,
    StatusCommand,
)
from backfill_sync.wire import (
    backfill_from_wire,
    error_from_body,
    fields_to_wire,
    missing_pipeline,
    raw_token,
    run_counts_of,
)

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_MAX_CONNECTIONS = 4
PAGE_SIZE = 100  # never <= 0: Mage answers `_limit=0` with [] and next=true forever (mage-api.md §7)
LIST_ATTEMPTS = 4
RETRY_AFTER_CAP = 30.0

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter; `sleep` is injectable so tests need not wait."""

    base: float = 0.5
    cap: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def pause(self, attempt: int, retry_after: float | None) -> None:
        if retry_after is not None:
            self.sleep(min(max(retry_after, 0.0), RETRY_AFTER_CAP))
            return
        ceiling = min(self.cap, self.base * 2**attempt)
        self.sleep(random.uniform(ceiling / 2, ceiling))


class _Unanswered(Exception):
    """A write reached (or may have reached) Mage but no answer came back: read back before going on."""


class MageClient:
    """Mage's backfill API with its traps handled; one keep-alive connection pool, closed on exit."""

    def __init__(
        self,
        connection: MageConnection,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        backoff: Backoff | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be >= 1: Mage pages `_limit` <= 0 forever")
        self._page_size = page_size
        self._connection = connection
        self._retries = max(retries, 0)
        self._workers = max(max_connections, 1)
        self._backoff = backoff or Backoff()
        self._token = raw_token(connection.token) if connection.token else None
        self._login_lock = threading.Lock()
        self._http = httpx.Client(
            base_url=connection.url.rstrip("/"),
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=self._workers, max_keepalive_connections=self._workers),
        )

    def __repr__(self) -> str:
        return f"MageClient(url={self._connection.url!r})"

    def __enter__(self) -> MageClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- reads ---------------------------------------------------------------------------------------

    def list_backfills(self, pipeline_uuid: str | None = None) -> list[LiveBackfill]:
        """Every backfill (of one pipeline), each once, re-listing when rows moved between pages."""
        for _ in range(LIST_ATTEMPTS):
            listing = self._list_once(pipeline_uuid)
            if listing is not None:
                return listing
        raise MageError(f"backfills kept changing while being listed ({LIST_ATTEMPTS} tries); try again")

    def pipeline_exists(self, pipeline_uuid: str) -> bool:
        """Whether Mage knows the pipeline (an unknown one lists as [] with no error, so ask)."""
        try:
            self._call("GET", f"/api/pipelines/{_segment(pipeline_uuid)}")
        except ApiError as exc:
            if missing_pipeline(exc) is not None:
                return False
            raise
        return True

    def list_pipeline_uuids(self) -> list[str]:
        """The uuids of every pipeline Mage has (paged like backfills, in case a server pages them)."""
        uuids: list[str] = []
        offset = 0
        while True:
            params = {"_limit": self._page_size, "_offset": offset}
            page = self._call("GET", "/api/pipelines", params=params)
            items = [item for item in page.get("pipelines") or [] if isinstance(item, dict)]
            uuids += [item["uuid"] for item in items if isinstance(item.get("uuid"), str)]
            if not (page.get("metadata") or {}).get("next") or not items:
                return uuids
            offset += len(items)

    def get_backfill(self, backfill_id: int, *, include_run_count: bool = False) -> LiveBackfill | None:
        """One backfill, None when Mage has no such id; run counts only when its schedule is sane
        (asking them of a row with units <= 0 hangs Mage, §6 hazard 2)."""
        try:
            live = self._read_backfill(backfill_id, include_run_count=False)
            if include_run_count and live.schedule() is not None:
                return self._read_backfill(backfill_id, include_run_count=True)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise
        return live

    def run_counts(self, backfills: Iterable[LiveBackfill]) -> dict[int, RunCounts]:
        """Run counts of the given backfills whose schedule is sane, fetched a few at a time."""
        sane = [backfill.id for backfill in backfills if backfill.schedule() is not None]
        self._auth_headers()  # log in once, before the threads start
        details = self._map(
            lambda backfill_id: self._read_backfill(backfill_id, include_run_count=True), sane
        )
        counts = {live.id: run_counts_of(live) for live in details}
        return {backfill_id: value for backfill_id, value in counts.items() if value is not None}

    # -- writes --------------------------------------------------------------------------------------

    def create_backfill(self, pipeline_uuid: str, fields: BackfillFields) -> LiveBackfill:
        """Create with the name only, then PUT the rest: the one flow every role may use (§4.1).

        The owner could send everything in one POST: one round trip instead of two per create
        (bench/client_bench.py), but it needs to know the role (a raw token does not say) and a second
        code path, for a call that happens once per new backfill. Not worth it.
        """
        if not fields.name:
            raise MageError("a backfill needs a name to be created")
        created = self._post_name(pipeline_uuid, fields.name)
        rest = BackfillFields(**{**_as_dict(fields), "name": None})
        if rest.is_empty():
            return created
        try:
            return self.update_backfill(pipeline_uuid, created.id, rest)
        except MageError as exc:
            raise MageError(
                f"backfill {fields.name!r} was created in {pipeline_uuid} as id {created.id}, "
                f"but setting its fields failed: {exc}"
            ) from exc

    def update_backfill(self, pipeline_uuid: str, backfill_id: int, fields: BackfillFields) -> LiveBackfill:
        """A plain field PUT (never with status): repeating it is harmless, so it is retried."""
        body = {"backfill": fields_to_wire(fields)}
        answer = self._call("PUT", _backfill_path(pipeline_uuid, backfill_id), body=body)
        return _backfill_in(answer)

    def set_status(self, pipeline_uuid: str, backfill_id: int, status: StatusCommand) -> LiveBackfill:
        """Start (`initial`) or cancel, alone in its PUT; never repeated blindly (it starts runs)."""
        before = self.get_backfill(backfill_id) if status == "initial" else None
        body = {"backfill": {"status": status}}
        path = _backfill_path(pipeline_uuid, backfill_id)
        try:
            return _backfill_in(self._call("PUT", path, body=body, repeatable=False))
        except _Unanswered as exc:
            return self._confirm_status(backfill_id, status, before, f"PUT {path} got no answer ({exc})")
        except ApiError as exc:
            # Cancelling a never-started backfill answers a 500 but saves the status (§6 hazard 5).
            if exc.code != 500 or status != "cancelled":
                raise
            return self._confirm_status(backfill_id, status, before, str(exc))

    def delete_backfill(self, pipeline_uuid: str, backfill_id: int) -> None:
        """Delete; after a lost answer, read back and delete again only if it is still there."""
        path = _backfill_path(pipeline_uuid, backfill_id)
        try:
            self._call("DELETE", path, repeatable=False)
        except _Unanswered:
            if self.get_backfill(backfill_id) is not None:
                self._call("DELETE", path)

    # -- write helpers -------------------------------------------------------------------------------

    def _post_name(self, pipeline_uuid: str, name: str) -> LiveBackfill:
        path = f"/api/pipelines/{_segment(pipeline_uuid)}/backfills"
        try:
            return _backfill_in(self._call("POST", path, body={"backfill": {"name": name}}, repeatable=False))
        except _Unanswered as exc:
            return self._find_created(pipeline_uuid, name, f"POST {path} got no answer ({exc})")

    def _find_created(self, pipeline_uuid: str, name: str, what: str) -> LiveBackfill:
        matches = [live for live in self.list_backfills(pipeline_uuid) if live.name == name]
        if len(matches) == 1:
            return matches[0]
        found = "no backfill" if not matches else f"{len(matches)} backfills"
        raise UnknownOutcome(
            f"{what}; Mage now has {found} named {name!r} in pipeline {pipeline_uuid}. "
            "Check the backfills of that pipeline in Mage, then run plan again."
        )

    def _confirm_status(
        self, backfill_id: int, status: StatusCommand, before: LiveBackfill | None, what: str
    ) -> LiveBackfill:
        after = self.get_backfill(backfill_id)
        if after is None:
            raise UnknownOutcome(f"{what}; backfill {backfill_id} no longer exists in Mage")
        if _status_reached(status, before, after):
            return after
        raise UnknownOutcome(
            f"{what}; backfill {backfill_id} now has status {after.status!r}, not {status!r}. "
            f"Check backfill {backfill_id} and its runs in Mage before trying again."
        )

    # -- reading helpers -----------------------------------------------------------------------------

    def _list_once(self, pipeline_uuid: str | None) -> list[LiveBackfill] | None:
        rows: dict[int, LiveBackfill] = {}
        totals: set[Any] = set()
        offset = 0
        while True:
            page = self._call("GET", "/api/backfills", params=self._list_params(pipeline_uuid, offset))
            items = page.get("backfills") or []
            metadata = page.get("metadata") or {}
            for item in items:
                live = backfill_from_wire(item)
                rows.setdefault(live.id, live)
            totals.add(metadata.get("count"))
            if not metadata.get("next") or not items:
                break
            offset += len(items)
        # Rows added or removed mid-listing shift the pages: trust the listing only if it adds up.
        return list(rows.values()) if totals == {len(rows)} else None

    def _list_params(self, pipeline_uuid: str | None, offset: int) -> dict[str, Any]:
        # No include_run_count on lists: one row with units <= 0 would hang the server (§6 hazard 2).
        params: dict[str, Any] = {"_limit": self._page_size, "_offset": offset}
        if pipeline_uuid is not None:
            params["pipeline_uuid"] = pipeline_uuid
        return params

    def _read_backfill(self, backfill_id: int, *, include_run_count: bool) -> LiveBackfill:
        params = {"include_run_count": "true"} if include_run_count else None
        return _backfill_in(self._call("GET", f"/api/backfills/{int(backfill_id)}", params=params))

    def _map(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) <= 1:
            return [func(item) for item in items]
        with ThreadPoolExecutor(max_workers=self._workers) as pool:
            return list(pool.map(func, items))

    # -- HTTP ----------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: JsonObject | None = None,
        repeatable: bool = True,
    ) -> JsonObject:
        """One request with retries; `repeatable=False` raises _Unanswered instead of re-sending."""
        headers = self._auth_headers()
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                response = self._http.request(method, path, params=params, json=body, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                # The request never left: re-sending is safe whatever it is.
                if last:
                    raise self._unreachable(exc) from None
                self._backoff.pause(attempt, None)
                continue
            except httpx.TransportError as exc:
                if not repeatable:
                    raise _Unanswered(_describe(exc)) from None
                if last:
                    raise self._unreachable(exc) from None
                self._backoff.pause(attempt, None)
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                if status != 429 and not repeatable:
                    raise _Unanswered(f"HTTP {status}")
                if not last:
                    self._backoff.pause(attempt, _retry_after(response))
                    continue
            return self._decode(method, path, response)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _decode(self, method: str, path: str, response: httpx.Response) -> JsonObject:
        try:
            body = response.json()
        except ValueError:
            body = None
        error = error_from_body(method, path, body)
        if error is not None:
            raise self._classify(error)
        if response.status_code >= 400 or not isinstance(body, dict):
            detail = f"HTTP {response.status_code} with {'no JSON body' if body is None else 'an odd body'}"
            raise ApiError(
                method=method, path=path, code=response.status_code, error_type=None, detail=detail
            )
        return body

    def _classify(self, error: ApiError) -> MageError:
        detail = self._scrub(error.detail)
        if error.code == 401:
            return AuthError(_auth_hint(error.error_type))
        if error.code == 403:
            hint = " (token missing: pass --token or --email/--password)" if "scope" in detail else ""
            return AuthError(f"Mage refused {error.method} {error.path}: {detail}{hint}")
        return ApiError(
            method=error.method, path=error.path, code=error.code, error_type=error.error_type, detail=detail
        )

    def _unreachable(self, exc: httpx.HTTPError) -> ConnectionFailed:
        return ConnectionFailed(f"cannot reach Mage at {self._connection.url}: {self._scrub(_describe(exc))}")

    def _scrub(self, text: str) -> str:
        for secret in (
            self._connection.api_key,
            self._connection.token,
            self._token,
            self._connection.password,
        ):
            if secret:
                text = text.replace(secret, "***")
        return text

    # -- auth ----------------------------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        headers = {"X-API-KEY": self._connection.api_key} if self._connection.api_key else {}
        token = self._user_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _user_token(self) -> str | None:
        if self._token or not (self._connection.email or self._connection.password):
            return self._token
        with self._login_lock:
            if self._token is None:
                self._token = self._log_in()
        return self._token

    def _log_in(self) -> str:
        email, password = self._connection.email, self._connection.password
        if not email or not password:
            raise AuthError("a login needs both --email and --password (or pass --token)")
        body = {"api_key": self._connection.api_key, "session": {"email": email, "password": password}}
        headers = {"X-API-KEY": self._connection.api_key}
        try:
            response = self._http.post("/api/sessions", json=body, headers=headers)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        try:
            answer = self._decode("POST", "/api/sessions", response)
        except ApiError as exc:
            if exc.error_type == "record_not_found":  # Mage's answer to an unknown user or a bad password
                raise AuthError(f"Mage refused the login of {email}: wrong email or password") from None
            raise MageError(
                f"no Mage login at {self._connection.url}/api/sessions (error {exc.code}: {exc.detail}); "
                "is --url the address of the Mage server itself?"
            ) from None
        token = (answer.get("session") or {}).get("token")
        if not isinstance(token, str) or not token:
            raise AuthError("Mage's login answer carried no token")
        return raw_token(token)


def _backfill_path(pipeline_uuid: str, backfill_id: int) -> str:
    return f"/api/pipelines/{_segment(pipeline_uuid)}/backfills/{int(backfill_id)}"


def _segment(text: str) -> str:
    return quote(text, safe="")


def _backfill_in(answer: JsonObject) -> LiveBackfill:
    obj = answer.get("backfill")
    if not isinstance(obj, dict) or "id" not in obj:
        raise MageError("Mage's answer carried no backfill")
    return backfill_from_wire(obj)


def _as_dict(fields: BackfillFields) -> dict[str, Any]:
    return {name: getattr(fields, name) for name in BackfillFields.__slots__}


def _status_reached(status: StatusCommand, before: LiveBackfill | None, after: LiveBackfill) -> bool:
    if status == "cancelled":
        return after.status == "cancelled"
    # A start sets started_at anew; the scheduler may already have moved the status on.
    started_anew = after.started_at is not None and (before is None or after.started_at != before.started_at)
    return after.status is not None and started_anew


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _auth_hint(error_type: str | None) -> str:
    if error_type == "invalid_api_key":
        return "Mage refused the API key: check --api-key / MAGE_API_KEY"
    if error_type == "expired_oauth_token":
        return "Mage says the token has expired: pass a new --token or log in with --email/--password"
    if error_type == "invalid_oauth_token":
        return "Mage refused the token: check --token / MAGE_TOKEN, or log in with --email/--password"
    return "Mage refused the credentials: check --api-key, --token or --email/--password"
