"""A small Mage look-alike on loopback whose answers a test scripts: for what no Mage would send.

It answers a login, pipeline lookups and empty listings like Mage by default; a test replaces the answer
to any request with its own (`server.on("GET", r"^/api/backfills$", handler)`), which may send anything:
malformed JSON, a body that never ends, one that trickles, a gzip bomb, or nothing at all. It is always
stopped (use it as a context manager), and handlers that stream stop when it does.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

RAW_TOKEN = "hostile-raw-session-token-0461"
PIPELINE = "daily_sales"


def jwt_of(raw: str) -> str:
    claims = base64.urlsafe_b64encode(json.dumps({"expires": 1e10, "token": raw}).encode()).rstrip(b"=")
    return f"eyJhbGciOiJIUzI1NiJ9.{claims.decode()}.c2lnbmF0dXJl"


@dataclass
class Exchange:
    """One request as the handler sees it, and the ways to answer it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    _handler: BaseHTTPRequestHandler
    stopping: threading.Event
    sent: list[int] = field(default_factory=lambda: [0])  # body bytes written, for the test to read

    def first(self, key: str, default: str | None = None) -> str | None:
        values = self.query.get(key)
        return values[0] if values else default

    def json(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.raw(json.dumps(body).encode(), status=status, headers=headers)

    def raw(self, data: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.stream([data], status=status, headers={"Content-Length": str(len(data)), **(headers or {})})

    def stream(
        self,
        chunks: Iterable[bytes],
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        pause: float = 0.0,
    ) -> None:
        """Headers, then each chunk (with `pause` seconds before each); chunked unless told the length."""
        handler = self._handler
        # Each answer closes its connection, and says so: a client must not send the next request on it.
        all_headers = {"Content-Type": "application/json", "Connection": "close", **(headers or {})}
        chunked = "Content-Length" not in all_headers
        if chunked:
            all_headers["Transfer-Encoding"] = "chunked"
        handler.send_response(status)
        for name, value in all_headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        try:
            for chunk in chunks:
                if not chunk:
                    continue  # in chunked framing an empty chunk would end the body
                if self.stopping.wait(pause) if pause else self.stopping.is_set():
                    break
                frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk
                handler.wfile.write(frame)
                handler.wfile.flush()
                self.sent[0] += len(chunk)
            if chunked:
                handler.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client gave up and closed the connection: what the tests want to see
        handler.close_connection = True

    def trickle_head(self, total: int, pause: float) -> None:
        """A status line, then a header a byte at a time (`pause` seconds apart): the head never ends."""
        wfile = self._handler.wfile
        try:
            wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(total):
                if self.stopping.wait(pause):
                    break
                wfile.write(b"a")
                wfile.flush()
                self.sent[0] += 1
        except OSError:
            pass  # the client gave up and closed the connection
        self._handler.close_connection = True

    def hang(self) -> None:
        """Answer nothing, until the client gives up or the server stops."""
        self.stopping.wait(60)
        self._handler.close_connection = True

    def drop(self) -> None:
        """Close the connection without an answer."""
        self._handler.close_connection = True


Handler = Callable[[Exchange], None]


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


def mage_row(backfill_id: Any, name: str | None, pipeline: str = PIPELINE, **fields: Any) -> dict[str, Any]:
    """A backfill row in Mage's 18-key shape."""
    row: dict[str, Any] = {
        "block_uuid": None,
        "completed_at": None,
        "created_at": "2024-06-01 00:00:00",
        "end_datetime": "2024-01-03 00:00:00",
        "failed_at": None,
        "interval_type": "day",
        "interval_units": 1,
        "metrics": None,
        "name": name,
        "pipeline_schedule_id": None,
        "pipeline_uuid": pipeline,
        "settings": None,
        "start_datetime": "2024-01-01 00:00:00",
        "started_at": None,
        "status": None,
        "updated_at": "2024-06-01 00:00:00",
        "variables": None,
        "id": backfill_id,
    }
    row.update(fields)
    return row


def listing(key: str, rows: list[Any], *, count: int | None = None, more: bool = False) -> dict[str, Any]:
    return {key: rows, "metadata": {"count": len(rows) if count is None else count, "next": more}}


class HostileServer:
    """`with HostileServer() as server: ... server.url ...`; `server.on(...)` scripts answers."""

    def __init__(self, pipelines: Iterable[str] = (PIPELINE,)) -> None:
        self.pipelines = list(pipelines)
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self._httpd = _Server(("127.0.0.1", 0), _RequestHandler)
        self._httpd.hostile = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def on(self, method: str, path: str, handler: Handler) -> None:
        """Answer requests of this method whose path matches the regex with `handler` (latest wins)."""
        with self._lock:
            self._routes.insert(0, (method, re.compile(path), handler))

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until every handler has returned (one streaming to a client that gave up notices it late)."""
        with self._idle:
            assert self._idle.wait_for(lambda: self._busy == 0, timeout), "a handler is still answering"

    def count(self, method: str, path: str) -> int:
        pattern = re.compile(path)
        return sum(1 for seen in self.seen if seen.method == method and pattern.search(seen.path))

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._thread.join()
        self._httpd.server_close()

    def answer(self, exchange: Exchange) -> None:
        with self._lock:
            self.seen.append(Seen(exchange.method, exchange.path, exchange.query, exchange.headers))
            routes = list(self._routes)
            self._busy += 1
        try:
            for method, pattern, handler in routes:
                if method == exchange.method and pattern.search(exchange.path):
                    handler(exchange)
                    return
            self._like_mage(exchange)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _like_mage(self, exchange: Exchange) -> None:
        path = exchange.path
        if exchange.method == "POST" and path == "/api/sessions":
            exchange.json({"session": {"token": jwt_of(RAW_TOKEN), "user": {"id": 1}}, "metadata": None})
            return
        found = re.fullmatch(r"/api/pipelines/([^/]+)", path)
        if exchange.method == "GET" and found:
            if found.group(1) in self.pipelines:
                exchange.json({"pipeline": {"uuid": found.group(1)}, "metadata": None})
            else:
                exchange.json(
                    {"error": {"code": 500, "exception": f"Pipeline {found.group(1)} does not exist."}}
                )
            return
        if exchange.method == "GET" and path == "/api/pipelines":
            exchange.json(listing("pipelines", [{"uuid": uuid} for uuid in self.pipelines]))
            return
        if exchange.method == "GET" and path == "/api/backfills":
            exchange.json(listing("backfills", []))
            return
        if exchange.method == "GET" and path == "/api/pipeline_runs":
            exchange.json(listing("pipeline_runs", []))
            return
        exchange.raw(b"", status=404)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hostile: HostileServer


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        exchange = Exchange(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
            _handler=self,
            stopping=self.server.hostile.stopping,
        )
        self.server.hostile.answer(exchange)


def repeat(chunk: bytes, total: int) -> Iterator[bytes]:
    """`chunk` over and over, `total` bytes in all."""
    left = total
    while left > 0:
        piece = chunk[:left]
        left -= len(piece)
        yield piece
