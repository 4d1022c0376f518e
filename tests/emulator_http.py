"""A tiny stdlib HTTP caller for emulator tests (independent of backfill_sync.client)."""

from __future__ import annotations

import base64
import http.client
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

API_KEY = "zkWlN0PkIKSN0C11CfUHUj84OT5XOJ6tDZ6bDRO2"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def error(self) -> Any:
        return self.body.get("error") if isinstance(self.body, dict) else None


def call(
    url: str,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> Answer:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=15)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        connection.request(method, path, body=data, headers=all_headers)
        response = connection.getresponse()
        payload = response.read()
        try:
            parsed: Any = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload
        return Answer(response.status, parsed, {k.lower(): v for k, v in response.getheaders()})
    finally:
        connection.close()


def jwt_payload(jwt: str) -> dict[str, Any]:
    body = jwt.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def login(url: str, email: str, password: str) -> str:
    """The raw token of a fresh session (the `token` claim of the JWT Mage hands out)."""
    answer = call(
        url, "POST", "/api/sessions", {"api_key": API_KEY, "session": {"email": email, "password": password}}
    )
    return str(jwt_payload(answer.body["session"]["token"])["token"])


class Api:
    """Calls as one user: X-API-KEY plus `Authorization: Bearer <raw>` (or nothing, with auth off)."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.token = token

    def headers(self) -> dict[str, str]:
        headers = {"X-API-KEY": API_KEY}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def __call__(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Answer:
        return call(self.url, method, path, body, self.headers(), raw)

    def get(self, path: str) -> Answer:
        return self("GET", path)

    def create(self, pipeline: str, **fields: Any) -> dict[str, Any]:
        answer = self("POST", f"/api/pipelines/{pipeline}/backfills", {"backfill": fields})
        assert answer.error is None, answer.body
        return dict(answer.body["backfill"])

    def put(self, backfill_id: int, **fields: Any) -> Answer:
        return self("PUT", f"/api/backfills/{backfill_id}", {"backfill": fields})

    def control(self, method: str, path: str, body: Any = None) -> Answer:
        return call(self.url, method, f"/_emulator/{path}", body)
