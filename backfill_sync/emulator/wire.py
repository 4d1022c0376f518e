"""Requests and responses as plain values, independent of the HTTP server that carries them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def first(self, key: str) -> str | None:
        values = self.query.get(key)
        return values[0] if values else None

    def json_body(self) -> Any:
        """The parsed body; `{}` when empty. Raises json.JSONDecodeError like Mage's json.loads."""
        if not self.body.strip():
            return {}
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: Any = None  # JSON-able value, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


def ok(body: Any) -> Response:
    return Response(200, body)
