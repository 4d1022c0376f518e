"""The one module that speaks HTTP: a session with Mage (auth, retries, error bodies, scrubbed messages).

Every request goes through `MageSession.call`. Reads and plain field writes are retried with backoff; a
write that must never happen twice (`repeatable=False`) raises `Unanswered` instead of being sent again,
so that its caller can read back what happened.

Nothing a server does can hold a command for long or fill its memory: an answer is streamed and given
up once it takes longer than the request timeout from sending to its last byte, or once its decoded
size passes `MAX_ANSWER_BYTES`; a listing may not run to more pages than its own `metadata.count`
allows (listing.py); and once Mage has answered nothing for a few request timeouts in a row, the session stops
sending (every thread of it) instead of trying each remaining request in turn. The request timeout
bounds the head of an answer as well as its body: every read and write on a connection ends by the
deadline of the request using it (`_DeadlineBackend`), so not even a server that sends its headers a byte
at a time can hold a request longer (behind an HTTP proxy, the head is the proxy's to bound).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpcore
import httpx

from backfill_sync.errors import ApiError, AuthError, ConnectionFailed, MageError, MalformedAnswer
from backfill_sync.models import DEFAULT_REQUEST_TIMEOUT, JsonObject, MageConnection
from backfill_sync.pacing import Pacer
from backfill_sync.safe_text import Secrets
from backfill_sync.wire import WireError, describe_value, error_from_body, raw_token

DEFAULT_TIMEOUT = DEFAULT_REQUEST_TIMEOUT
DEFAULT_RETRIES = 3
DEFAULT_MAX_CONNECTIONS = 16  # a ceiling: the pacer keeps fewer in flight on a Mage that queues them
RETRY_AFTER_CAP = 30.0
# The decoded size of one answer that is read at most. Mage's largest answers to us are a page of 100
# backfills (~60 KB), of 20 full failed runs (~220 KB) or of 100 pipelines (a few MB with many blocks):
# 64 MiB is ten times that and more, yet parses into well under 1 GB of Python objects, which a CI
# runner has. A gzip bomb is stopped at this size too, as the decoded bytes are what is counted.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
# After this many request timeouts without one answer, Mage counts as stopped: nothing more is sent.
SILENT_TIMEOUTS = 3
# Deeper JSON than this is no answer of Mage's (and Python's own parsers recurse on it).
MAX_JSON_DEPTH = 100

T = TypeVar("T")
R = TypeVar("R")

_URL_FIX = "check MAGE_URL (--url)"
_CONTAINERS = (dict, list)


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


class _NotSent(Exception):
    """The request never left (no connection): re-sending it is safe whatever it is."""


class _NoAnswer(Exception):
    """The request was sent, but no whole answer came back (reset, timed out, too slow)."""

    def __init__(self, text: str, *, timed_out: bool) -> None:
        super().__init__(text)
        self.timed_out = timed_out


class _TooLarge(Exception):
    """The answer is larger than the session reads."""


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    retry_after: float | None


class MageSession:
    """One keep-alive connection pool to one Mage, logged in at most once, closed on exit."""

    def __init__(
        self,
        connection: MageConnection,
        *,
        timeout: float | None = None,
        retries: int = DEFAULT_RETRIES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        backoff: Backoff | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.workers = max(max_connections, 1)
        self.timeout = connection.request_timeout if timeout is None else timeout
        # At most `workers` requests in flight, fewer while Mage queues them (pacing.py).
        self.pacer = Pacer(self.workers, self.timeout)
        self._retries = max(retries, 0)
        self._backoff = backoff or Backoff()
        self._max_bytes = max_answer_bytes
        self._clock = clock
        self._token = raw_token(connection.token) if connection.token else None
        self._secrets = Secrets((connection.api_key, connection.token, self._token, connection.password))
        self._login_lock = threading.Lock()
        self._clock_lock = threading.Lock()
        self._server_time: datetime | None = None
        self._silent_since: float | None = None  # when the current run of unanswered attempts began
        self._last_silence = ""  # why the latest of them failed
        limits = httpx.Limits(max_connections=self.workers, max_keepalive_connections=self.workers)
        self._http = httpx.Client(
            base_url=connection.url.rstrip("/"),
            timeout=httpx.Timeout(self.timeout),
            limits=limits,
            # httpx reads the proxy variables only when it builds its own transport: behind a proxy the
            # proxy's transport is httpx's, and the head of an answer is bounded by the proxy.
            transport=None if _env_proxied() else _deadline_transport(limits),
        )
        self._base_url = str(self._http.base_url).rstrip("/") + "/"  # as httpx joins a path to it

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

    # -- sending -------------------------------------------------------------------------------------

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
            self._check_not_silent(method, path, attempt)
            began = self._clock()
            try:
                with self.pacer.slot(method, path):
                    began = self._clock()  # Mage's silence counts from the sending, not the wait for a slot
                    answer = self._send(method, path, params, body, headers)
            except _NotSent as exc:
                self._note_silence(began, str(exc))
                if last:
                    raise self._unreachable(method, path, str(exc), timed_out=False) from None
                self._backoff.pause(attempt, None)
                continue
            except _NoAnswer as exc:
                self._note_silence(began, str(exc))
                if not repeatable:
                    raise Unanswered(self._secrets.clean(str(exc))) from None
                if last:
                    raise self._unreachable(method, path, str(exc), timed_out=exc.timed_out) from None
                self._backoff.pause(attempt, None)
                continue
            except _TooLarge as exc:
                self._note_answer()
                if not repeatable:
                    raise Unanswered(str(exc)) from None
                raise self._malformed(method, path, str(exc)) from None
            status = answer.status
            if status == 429 or status >= 500:
                self._note_silence(began, f"HTTP {status}")
                if status != 429 and not repeatable:
                    raise Unanswered(f"HTTP {status}")
                if not last:
                    self._backoff.pause(attempt, answer.retry_after)
                    continue
            else:
                self._note_answer()
            return self._decode(method, path, answer)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _send(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: JsonObject | None,
        headers: dict[str, str],
    ) -> _Answer:
        deadline = self._clock() + self.timeout
        with _connections_end_by(time.monotonic() + self.timeout):
            try:
                url = self._url(path, params)
                request = self._http.build_request(method, url, json=body, headers=headers)
                response = self._http.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise _NotSent(_describe(exc)) from None
            except httpx.TransportError as exc:
                raise self._no_answer(exc, "no complete answer within") from None
            try:
                self._note_clock(response)
                data = self._read_body(response, deadline)
            except httpx.TransportError as exc:
                raise self._no_answer(exc, "the answer was still coming after") from None
            except httpx.DecodingError as exc:
                raise _NoAnswer(
                    f"the answer's content encoding is broken ({_describe(exc)})", timed_out=False
                ) from None
            finally:
                response.close()
        return _Answer(response.status_code, data, _retry_after(response))

    def _no_answer(self, exc: httpx.TransportError, timed_out_text: str) -> _NoAnswer:
        if isinstance(exc, httpx.TimeoutException):
            return _NoAnswer(f"{timed_out_text} {self.timeout:g} s ({_describe(exc)})", timed_out=True)
        return _NoAnswer(_describe(exc), timed_out=False)

    def _url(self, path: str, params: dict[str, Any] | None) -> str:
        """The absolute URL httpx makes of base_url, `path` and `params`, as one string: given the parts,
        httpx parses a URL for each merge (a sixth of the client's CPU per request)."""
        url = self._base_url + path.lstrip("/")
        if params:
            url += "?" + urlencode([(key, _query_value(value)) for key, value in params.items()])
        return url

    def _read_body(self, response: httpx.Response, deadline: float) -> bytes:
        """The decoded body, read as it streams in: refused once it passes the size cap or the deadline."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise _TooLarge(
                f"it is {int(declared)} bytes, more than the {_mib(self._max_bytes)} backfill-sync reads"
            )
        data = bytearray()
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > self._max_bytes:
                raise _TooLarge(f"it is larger than the {_mib(self._max_bytes)} backfill-sync reads")
            if self._clock() > deadline:
                raise _NoAnswer(
                    f"the answer was still coming after {self.timeout:g} s ({len(data)} bytes so far)",
                    timed_out=True,
                )
        return bytes(data)

    # -- Mage stopped answering ------------------------------------------------------------------------

    def _note_silence(self, began: float, why: str) -> None:
        with self._clock_lock:
            if self._silent_since is None:
                self._silent_since = began
            self._last_silence = why

    def _note_answer(self) -> None:
        with self._clock_lock:
            self._silent_since = None

    def _check_not_silent(self, method: str, path: str, attempt: int) -> None:
        """Once Mage has answered nothing for SILENT_TIMEOUTS request timeouts, stop sending: otherwise
        every remaining request (one per backfill in an apply) would try its retries in turn."""
        with self._clock_lock:
            since, why = self._silent_since, self._last_silence
        window = SILENT_TIMEOUTS * self.timeout
        if since is None or self._clock() - since < window:
            return
        again = " again" if attempt else ""
        raise ConnectionFailed(
            f"{self._more_time_fix()}: Mage at {self.connection.url} has not answered in full for "
            f"{window:g} s ({SILENT_TIMEOUTS} request timeouts), so backfill-sync stopped before sending "
            f"{method} {path}{again}; the last try: {self._secrets.clean(why)}"
        )

    # -- answers -------------------------------------------------------------------------------------

    def _note_clock(self, response: httpx.Response) -> None:
        value = response.headers.get("Date")
        if not value:
            return
        try:
            stamp = parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError, IndexError):
            return
        with self._clock_lock:
            self._server_time = stamp

    def _decode(self, method: str, path: str, answer: _Answer) -> JsonObject:
        body = self._parse_json(method, path, answer.body)
        error = error_from_body(method, path, body)
        if error is not None:
            raise self._classify(error)
        if answer.status >= 400 or not isinstance(body, dict):
            detail = f"HTTP {answer.status} with {'no JSON body' if body is None else describe_value(body)}"
            raise ApiError(method=method, path=path, code=answer.status, error_type=None, detail=detail)
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

    def _classify(self, error: ApiError) -> MageError:
        detail = self._secrets.clean(error.detail)
        error_type = None if error.error_type is None else self._secrets.clean(error.error_type)
        if error.code == 401:
            return AuthError(_auth_hint(error.error_type, detail))
        if error.code == 403:
            refused = f"Mage refused {error.method} {error.path}: {detail}"
            if "scope" in detail:
                return AuthError(
                    "no user credentials: set MAGE_TOKEN (--token), or MAGE_EMAIL and MAGE_PASSWORD "
                    f"(--email/--password). {refused}"
                )
            return AuthError(
                "use the credentials of a Mage user whose role may do this (Editor or above for writes). "
                + refused
            )
        return ApiError(
            method=error.method, path=error.path, code=error.code, error_type=error_type, detail=detail
        )

    def _unreachable(self, method: str, path: str, why: str, *, timed_out: bool) -> ConnectionFailed:
        where = f"Mage at {self.connection.url}"
        why = self._secrets.clean(why)
        if timed_out:
            return ConnectionFailed(f"{self._more_time_fix()}: {where} did not answer {method} {path}: {why}")
        return ConnectionFailed(f"{_URL_FIX}: cannot reach {where}: {why}")

    def _more_time_fix(self) -> str:
        return (
            f"{_URL_FIX}, or give Mage more time with MAGE_REQUEST_TIMEOUT (--request-timeout, "
            f"now {self.timeout:g} s)"
        )

    def _malformed(self, method: str, path: str, what: str) -> MalformedAnswer:
        return MalformedAnswer(
            f"Mage at {self.connection.url} answered {method} {path} with an answer backfill-sync cannot "
            f"read: {self._secrets.clean(what)} (is MAGE_URL a Mage server?)"
        )

    def scrub(self, text: str) -> str:
        """The text with every credential this session knows replaced by ***."""
        return self._secrets.scrub(text)

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
            raise AuthError(
                "set both MAGE_EMAIL and MAGE_PASSWORD (--email/--password), or MAGE_TOKEN (--token): "
                "a login needs both an email and a password"
            )
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
        self._secrets.add(token)
        self._secrets.add(raw_token(token))
        return raw_token(token)

    def _login_refused(self, exc: ApiError) -> MageError:
        if exc.error_type == "record_not_found":  # Mage's answer to an unknown user or a bad password
            return AuthError(
                "check MAGE_EMAIL and MAGE_PASSWORD (--email/--password): Mage refused the login of "
                f"{self.connection.email}: wrong email or password"
            )
        if exc.error_type is None and exc.code < 500 and exc.code != 429:
            # No Mage error body, just an HTTP status or a page: something else answers at this URL.
            return MageError(
                f"{_URL_FIX}: no Mage login at {self.connection.url}/api/sessions (error {exc.code}: "
                f"{exc.detail}); is --url the address of the Mage server itself?"
            )
        return MageError(f"Mage at {self.connection.url} failed the login: {exc}")


def _too_deep(value: Any) -> bool:
    """Whether JSON nests deeper than MAX_JSON_DEPTH, found without recursion, a level at a time (no
    tuple per value: a listing of 10 000 backfills holds some 40 000 objects)."""
    level = [value] if isinstance(value, _CONTAINERS) else []
    depth = 1
    while level:
        if depth > MAX_JSON_DEPTH:
            return True
        below: list[Any] = []
        for current in level:
            children = current.values() if isinstance(current, dict) else current
            below += [child for child in children if isinstance(child, _CONTAINERS)]
        level = below
        depth += 1
    return False


# -- every read and write of a request ends by its deadline ---------------------------------------------

_request = threading.local()  # .deadline: time.monotonic() by which the thread's request must be done


@contextmanager
def _connections_end_by(deadline: float) -> Iterator[None]:
    """Within this block, the calling thread's reads, writes and connects end by `deadline`."""
    _request.deadline = deadline
    try:
        yield
    finally:
        _request.deadline = None


def _within(timeout: float | None) -> float | None:
    """The timeout of one socket operation: its own, or less if the request's deadline comes first. Past
    the deadline a socket still gets a moment, so that it times out (as httpx then says) rather than
    blocks."""
    deadline: float | None = getattr(_request, "deadline", None)
    if deadline is None:
        return timeout
    left = max(deadline - time.monotonic(), 0.001)
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every operation ends by the deadline of the request using it: the read
    timeout alone bounds only the gap between two bytes."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _within(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _within(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, _within(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own sockets, each wrapped in a `_DeadlineStream`."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(host, port, _within(timeout), local_address, socket_options)
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._backend.connect_unix_socket(path, _within(timeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _env_proxied() -> bool:
    """Whether HTTP_PROXY, HTTPS_PROXY or ALL_PROXY (any case) is set, as httpx would use them."""
    return any(scheme in urllib.request.getproxies() for scheme in ("http", "https", "all"))


def _deadline_transport(limits: httpx.Limits) -> httpx.HTTPTransport:
    """httpx's transport over a connection pool of `_DeadlineBackend` sockets. httpx takes no network
    backend, so its pool is replaced by an equal one that has it (tests/test_transport.py's trickling
    headers fail if this stops working). One TLS context serves both (making one reads the CA bundle:
    some 35 ms, at the start of every command that talks to Mage)."""
    ssl_context = httpx.create_ssl_context()
    transport = httpx.HTTPTransport(verify=ssl_context, limits=limits)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_DeadlineBackend(),
    )
    return transport


def _query_value(value: Any) -> str:
    """A query value as httpx writes it: JSON-style booleans, None as empty."""
    if value is True or value is False:
        return "true" if value else "false"
    return "" if value is None else str(value)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
    return None if seconds is None or math.isnan(seconds) else seconds


def _describe(exc: httpx.HTTPError) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


def _auth_hint(error_type: str | None, detail: str) -> str:
    said = f" (Mage: {detail})" if detail else ""
    if error_type == "invalid_api_key":
        return f"check MAGE_API_KEY (--api-key): Mage refused the API key{said}"
    if error_type == "expired_oauth_token":
        return (
            "set a new MAGE_TOKEN (--token), or log in with MAGE_EMAIL and MAGE_PASSWORD "
            f"(--email/--password): Mage says the token has expired{said}"
        )
    if error_type == "invalid_oauth_token":
        return (
            "check MAGE_TOKEN (--token), or log in with MAGE_EMAIL and MAGE_PASSWORD "
            f"(--email/--password): Mage refused the token{said}"
        )
    return f"check MAGE_API_KEY, MAGE_TOKEN or MAGE_EMAIL/MAGE_PASSWORD: Mage refused the credentials{said}"
