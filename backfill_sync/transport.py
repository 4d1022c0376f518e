"""The one module that speaks HTTP: a session with Mage (auth, retries, error bodies, scrubbed messages).

Every request goes through `MageSession.call`. Reads and plain field writes are retried with backoff; a
write that must never happen twice (`repeatable=False`) raises `Unanswered` instead of being sent again,
so that its caller can read back what happened.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from backfill_sync.errors import ApiError, AuthError, ConnectionFailed, MageError, MalformedAnswer
from backfill_sync.models import JsonObject, MageConnection
from backfill_sync.wire import WireError, describe_value, error_from_body, listing_count, raw_token

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
DEFAULT_MAX_CONNECTIONS = 4
RETRY_AFTER_CAP = 30.0
# Deeper JSON than this is no answer of Mage's (and Python's own parsers recurse on it).
MAX_JSON_DEPTH = 100

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


class Unanswered(Exception):
    """A write reached (or may have reached) Mage but no answer came back: read back before going on."""


class MageSession:
    """One keep-alive connection pool to one Mage, logged in at most once, closed on exit."""

    def __init__(
        self,
        connection: MageConnection,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        backoff: Backoff | None = None,
    ) -> None:
        self.connection = connection
        self.workers = max(max_connections, 1)
        self._retries = max(retries, 0)
        self._backoff = backoff or Backoff()
        self._token = raw_token(connection.token) if connection.token else None
        self._login_lock = threading.Lock()
        self._clock_lock = threading.Lock()
        self._server_time: datetime | None = None
        self._http = httpx.Client(
            base_url=connection.url.rstrip("/"),
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=self.workers, max_keepalive_connections=self.workers),
        )

    def close(self) -> None:
        self._http.close()

    @property
    def backoff(self) -> Backoff:
        return self._backoff

    def server_time(self) -> datetime | None:
        """Mage's clock, from the `Date` header of the latest answer (whole seconds, UTC)."""
        with self._clock_lock:
            return self._server_time

    def map(self, func: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """func over items, a few at a time (as many as the pool has connections), in order."""
        if len(items) <= 1:
            return [func(item) for item in items]
        self.auth_headers()  # log in once, before the threads start
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(func, items))

    def list_all(
        self,
        path: str,
        key: str,
        params: dict[str, Any],
        page_size: int,
        read: Callable[[Any], T],
    ) -> tuple[list[T], set[int]]:
        """Every item of a paged Mage listing (`_limit`/`_offset`, `metadata.next`), each passed through
        `read`, and every `metadata.count` the pages gave: when rows move between pages, those counts
        disagree with the number of items, and the caller lists again."""
        if page_size < 1:
            raise ValueError("page_size must be >= 1: Mage pages `_limit` <= 0 forever")
        items: list[T] = []
        totals: set[int] = set()
        offset = 0
        while True:
            page = self.call("GET", path, params={**params, "_limit": page_size, "_offset": offset})
            with self.reading("GET", path):
                rows, count, more = _page_of(page, key)
                totals.add(count)
                items += _read_rows(rows, key, offset, read)
            if not more or not rows:
                return items, totals
            offset += len(rows)

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: JsonObject | None = None,
        repeatable: bool = True,
    ) -> JsonObject:
        """One request with retries; `repeatable=False` raises Unanswered instead of re-sending."""
        headers = self.auth_headers()
        return self._call(method, path, params=params, body=body, headers=headers, repeatable=repeatable)

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None,
        body: JsonObject | None,
        headers: dict[str, str],
        repeatable: bool,
    ) -> JsonObject:
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
                    raise Unanswered(_describe(exc)) from None
                if last:
                    raise self._unreachable(exc) from None
                self._backoff.pause(attempt, None)
                continue
            self._note_clock(response)
            status = response.status_code
            if status == 429 or status >= 500:
                if status != 429 and not repeatable:
                    raise Unanswered(f"HTTP {status}")
                if not last:
                    self._backoff.pause(attempt, _retry_after(response))
                    continue
            return self._decode(method, path, response)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def request(
        self,
        method: str,
        path: str,
        read: Callable[[JsonObject], T],
        *,
        params: dict[str, Any] | None = None,
        body: JsonObject | None = None,
        repeatable: bool = True,
    ) -> T:
        """`call`, then the answer read by `read` (a wire.py reader); a malformed one names the request."""
        answer = self.call(method, path, params=params, body=body, repeatable=repeatable)
        with self.reading(method, path):
            return read(answer)

    @contextmanager
    def reading(self, method: str, path: str) -> Iterator[None]:
        """Turns what wire.py finds wrong in an answer into a MalformedAnswer naming the request."""
        try:
            yield
        except WireError as exc:
            raise self._malformed(method, path, str(exc)) from None

    # -- answers -------------------------------------------------------------------------------------

    def _note_clock(self, response: httpx.Response) -> None:
        value = response.headers.get("Date")
        if not value:
            return
        try:
            stamp = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return
        with self._clock_lock:
            self._server_time = stamp

    def _decode(self, method: str, path: str, response: httpx.Response) -> JsonObject:
        body = self._parse_json(method, path, response.content)
        error = error_from_body(method, path, body)
        if error is not None:
            raise self._classify(error)
        if response.status_code >= 400 or not isinstance(body, dict):
            kind = "no JSON body" if body is None else describe_value(body)
            detail = f"HTTP {response.status_code} with {kind}"
            raise ApiError(
                method=method, path=path, code=response.status_code, error_type=None, detail=detail
            )
        return body

    def _parse_json(self, method: str, path: str, data: bytes) -> Any:
        """The JSON of a body; None when it is not JSON at all (an HTML error page, say)."""
        try:
            parsed = json.loads(data)
        except RecursionError:
            raise self._malformed(method, path, "its JSON is nested too deeply") from None
        except ValueError:
            return None
        if _too_deep(parsed):
            raise self._malformed(method, path, f"its JSON is nested more than {MAX_JSON_DEPTH} levels deep")
        return parsed

    def _malformed(self, method: str, path: str, what: str) -> MalformedAnswer:
        return MalformedAnswer(
            f"Mage at {self.connection.url} answered {method} {path} with an answer backfill-sync cannot "
            f"read: {self.scrub(what)} (is MAGE_URL a Mage server?)"
        )

    def _classify(self, error: ApiError) -> MageError:
        detail = self.scrub(error.detail)
        if error.code == 401:
            return AuthError(_auth_hint(error.error_type))
        if error.code == 403:
            hint = " (token missing: pass --token or --email/--password)" if "scope" in detail else ""
            return AuthError(f"Mage refused {error.method} {error.path}: {detail}{hint}")
        return ApiError(
            method=error.method, path=error.path, code=error.code, error_type=error.error_type, detail=detail
        )

    def _unreachable(self, exc: httpx.HTTPError) -> ConnectionFailed:
        return ConnectionFailed(f"cannot reach Mage at {self.connection.url}: {self.scrub(_describe(exc))}")

    def scrub(self, text: str) -> str:
        """The text with every credential this session knows replaced by ***."""
        for secret in (
            self.connection.api_key,
            self.connection.token,
            self._token,
            self.connection.password,
        ):
            if secret:
                text = text.replace(secret, "***")
        return text

    # -- auth ----------------------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        headers = {"X-API-KEY": self.connection.api_key} if self.connection.api_key else {}
        token = self._user_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _user_token(self) -> str | None:
        if self._token or not (self.connection.email or self.connection.password):
            return self._token
        with self._login_lock:
            if self._token is None:
                self._token = self._log_in()
        return self._token

    def _log_in(self) -> str:
        """A login creates a session and nothing else: repeating it is harmless, so it is retried."""
        email, password = self.connection.email, self.connection.password
        if not email or not password:
            raise AuthError("a login needs both --email and --password (or pass --token)")
        body = {"api_key": self.connection.api_key, "session": {"email": email, "password": password}}
        headers = {"X-API-KEY": self.connection.api_key}
        try:
            answer = self._call(
                "POST", "/api/sessions", params=None, body=body, headers=headers, repeatable=True
            )
        except ApiError as exc:
            raise self._login_refused(exc) from None
        session = answer.get("session")
        token = session.get("token") if isinstance(session, dict) else None
        if not isinstance(token, str) or not token:
            raise self._malformed("POST", "/api/sessions", "the login answer carries no session token")
        return raw_token(token)

    def _login_refused(self, exc: ApiError) -> MageError:
        if exc.error_type == "record_not_found":  # Mage's answer to an unknown user or a bad password
            return AuthError(f"Mage refused the login of {self.connection.email}: wrong email or password")
        if exc.error_type is None and exc.code < 500 and exc.code != 429:
            # No Mage error body, just an HTTP status or a page: something else answers at this URL.
            return MageError(
                f"no Mage login at {self.connection.url}/api/sessions (error {exc.code}: {exc.detail}); "
                "is --url the address of the Mage server itself?"
            )
        return MageError(f"Mage at {self.connection.url} failed the login: {exc}")


def _page_of(page: JsonObject, key: str) -> tuple[list[Any], int, bool]:
    """The rows of one listing page, its `metadata.count` and `metadata.next`; WireError if malformed."""
    rows = page.get(key)
    if not isinstance(rows, list):
        raise WireError(f"{key} is {describe_value(rows)}, not a list")
    return rows, listing_count(page), bool(page["metadata"].get("next"))


def _read_rows(rows: list[Any], key: str, offset: int, read: Callable[[Any], T]) -> list[T]:
    found: list[T] = []
    for index, row in enumerate(rows):
        try:
            found.append(read(row))
        except WireError as exc:
            raise WireError(f"{key}[{offset + index}]: {exc}") from None
    return found


def _too_deep(value: Any) -> bool:
    """Whether JSON nests deeper than MAX_JSON_DEPTH, found without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        current, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return True
        children = current.values() if isinstance(current, dict) else current
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


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
