"""A loopback proxy in front of any Mage (the emulator or a real one) that loses chosen answers.

Use it as `with serving(LossyProxy(mage_url)) as proxy:` (tests/loopback.py). A request that matches
a `Loss` is passed on to Mage in full, Mage does what it asks, and then the proxy closes the client's
connection without a byte of the answer: the client cannot tell whether anything happened. That is
the unknown outcome a slow or broken network leaves, reproduced on real Mage, where the emulator's
`drop_after` fault is not available. Every request passed on is kept, so a test can count them.
"""

from __future__ import annotations

import http.client
import re
import socketserver
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Loss:
    """Lose the answers of the next `times` requests whose method, path and body match."""

    method: str
    path: str  # a regular expression searched in the path (the query left out)
    body: str = ""  # a regular expression searched in the body; "" matches any
    times: int = 1
    lost: list[str] = field(default_factory=list)  # "METHOD path" of each answer lost

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if method != self.method or re.search(self.path, path.split("?")[0]) is None:
            return False
        return not self.body or re.search(self.body, body.decode("utf-8", "replace")) is not None

    def takes(self, method: str, path: str, body: bytes) -> bool:
        return len(self.lost) < self.times and self.matches(method, path, body)


class LossyProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.losses: list[Loss] = []
        self.sent: list[tuple[str, str, bytes]] = []  # every request passed on to Mage, in order
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def lose(self, loss: Loss) -> Loss:
        with self.lock:
            self.losses.append(loss)
        return loss

    def count(self, loss: Loss) -> int:
        """How many requests like the loss's reached Mage, lost or answered."""
        with self.lock:
            return sum(loss.matches(method, path, body) for method, path, body in self.sent)

    def loses(self, method: str, path: str, body: bytes) -> Loss | None:
        with self.lock:
            for loss in self.losses:
                if loss.takes(method, path, body):
                    loss.lost.append(f"{method} {path}")
                    return loss
        return None


class _Handler(socketserver.StreamRequestHandler):
    server: LossyProxy

    def handle(self) -> None:
        request_line = self.rfile.readline().decode("latin-1").strip()
        if not request_line:
            return
        method, path, _ = request_line.split(" ", 2)
        headers: list[tuple[str, str]] = []
        while (line := self.rfile.readline().decode("latin-1").strip()) != "":
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        length = next((int(value) for name, value in headers if name.lower() == "content-length"), 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.sent.append((method, path, body))
        status, reason, answer_headers, answer = self._forward(method, path, headers, body)
        if self.server.loses(method, path, body) is not None:
            return  # Mage did it; the client never hears so
        head = [f"HTTP/1.1 {status} {reason}"]
        head += [f"{name}: {value}" for name, value in answer_headers]
        head += [f"Content-Length: {len(answer)}", "Connection: close", "", ""]
        self.wfile.write("\r\n".join(head).encode("latin-1") + answer)

    def _forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        host, port = self.server.upstream
        connection = http.client.HTTPConnection(host, port, timeout=120)
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                if name.lower() not in ("connection", "keep-alive"):
                    connection.putheader(name, value)
            connection.endheaders(body or None)
            response = connection.getresponse()
            answer = response.read()  # de-chunked; a Content-Encoding stays as Mage sent it
            passed = [
                (name, value)
                for name, value in response.getheaders()
                if name.lower() not in ("transfer-encoding", "content-length", "connection", "keep-alive")
            ]
            return response.status, response.reason, passed, answer
        finally:
            connection.close()
