"""The emulator's HTTP side: a threading stdlib server on loopback, fault injection, lifecycle."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from backfill_sync.emulator.control import (
    CONTROL_PREFIX,
    RequestLog,
    handle_control,
    insert_backfills,
    pipeline_named_by,
)
from backfill_sync.emulator.faults import Fault, FaultBook
from backfill_sync.emulator.routes import handle_api
from backfill_sync.emulator.scheduler import Scheduler
from backfill_sync.emulator.state import Store
from backfill_sync.emulator.wire import Request, Response


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    port: int = 0  # 0: any free port
    pipelines: tuple[str, ...] = ()
    auth_on: bool = True  # like Mage 0.9.80's REQUIRE_USER_AUTHENTICATION default
    run_seconds: float = 2.0  # a run's execution takes this long once the scheduler starts it; 0: forever
    tick_seconds: float = 0.2
    host: str = "127.0.0.1"


class EmulatorServer:
    """A running emulator: `with EmulatorServer(config) as server: ... server.url ...`."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = Store(config.pipelines)
        self.faults = FaultBook()
        self.log = RequestLog()
        self._httpd = _HTTPServer((config.host, config.port), _Handler)
        self._httpd.emulator = self
        self._scheduler = Scheduler(self.store, config.tick_seconds, config.run_seconds)
        self._thread = threading.Thread(target=self._serve_forever, name="emulator-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def _serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.05)  # a short poll makes stop() quick

    def start(self) -> None:
        self._thread.start()
        self._scheduler.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._scheduler.stop()
        self._httpd.server_close()

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def serve(self, request: Request) -> Response | None:
        """The answer to one request, or None when a fault says the connection must just close."""
        if request.path.startswith(CONTROL_PREFIX):
            return handle_control(request, self.store, self.faults, self.log)
        self.log.record(request)
        fault = self.faults.take(request.method, request.path)
        if fault is None:
            return self._answer(request)
        return self._answer_with_fault(request, fault)

    def _answer(self, request: Request) -> Response:
        return handle_api(request, self.store, auth_on=self.config.auth_on)

    def _answer_with_fault(self, request: Request, fault: Fault) -> Response | None:
        if fault.kind == "drop_before":
            return None
        if fault.kind == "status":
            headers = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
            return Response(fault.status, f"Injected HTTP {fault.status}\n".encode(), headers)
        if fault.kind == "error_body":
            return Response(200, {"error": fault.error})
        if fault.kind == "latency":
            time.sleep(fault.seconds)
        if fault.kind == "insert_backfills":
            pipeline = pipeline_named_by(request)
            if pipeline is not None:
                insert_backfills(self.store, pipeline, fault.count)
        response = self._answer(request)
        # drop_after: the request took effect, but the client never learns it (an unknown outcome).
        return None if fault.kind == "drop_after" else response


class _ShortBody(Exception):
    """The client stopped before sending the whole body its headers announced."""


class _BadFraming(Exception):
    """The body's length cannot be read from the headers (a Content-Length that is not a number)."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    emulator: EmulatorServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so clients can reuse connections as with tornado
    # Headers and body go out as two writes; with Nagle on, the body waits for a delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server_version = "MageEmulator/0.9.80"
    timeout = 60  # an idle keep-alive connection frees its thread eventually
    server: _HTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        pass  # stdout carries only the URL; stderr stays quiet for the tests' sake

    def _serve(self) -> None:
        try:
            request = self._read_request()
        except _BadFraming:
            self._send(Response(400, b""))  # tornado's `400 Bad Request` to a Content-Length it cannot read
            self.close_connection = True
            return
        except _ShortBody:
            # Tornado (Mage's server) runs a handler only once the whole body is in: a client that
            # sends fewer bytes than its Content-Length and stops gets no answer, and nothing is done
            # (measured on mage-ai 0.9.80: a POST with `Content-Length: 50` and no body, then a
            # half-close, creates no backfill; left open, it is never answered). `Content-Length: 0`
            # is a whole, empty body, handled like `{}`, as Mage does.
            self.close_connection = True
            return
        response = self.server.emulator.serve(request)
        if response is None:
            self.close_connection = True
            return
        self._send(response)

    def _read_request(self) -> Request:
        split = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        return Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=headers,
            body=self._read_body(),
        )

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        declared = (self.headers.get("Content-Length") or "0").strip()
        if not declared.isdigit():
            raise _BadFraming
        return self._read_exactly(int(declared))

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            line = self.rfile.readline()
            if not line.endswith(b"\n"):
                raise _ShortBody  # the connection ended inside the chunk framing
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadFraming from None
            if size == 0:
                self.rfile.readline()
                return b"".join(chunks)
            chunks.append(self._read_exactly(size))
            self.rfile.readline()

    def _read_exactly(self, length: int) -> bytes:
        data = self.rfile.read(length) if length > 0 else b""
        if len(data) < length:
            raise _ShortBody
        return data

    def _send(self, response: Response) -> None:
        payload = response.encoded()
        self.send_response(response.status)
        content_type = "application/json" if not isinstance(response.body, bytes) else "text/plain"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
