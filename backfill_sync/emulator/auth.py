"""Mage's auth: the api-key + token middleware, session JWTs, and the backfill policy for non-owners."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.cookies import CookieError, SimpleCookie
from typing import Any

from backfill_sync.emulator.apierrors import (
    EXPIRED_OAUTH_TOKEN,
    INVALID_API_KEY,
    INVALID_OAUTH_TOKEN,
    forbidden,
)
from backfill_sync.emulator.state import Store, Token, User
from backfill_sync.emulator.values import now_utc
from backfill_sync.emulator.wire import Request
from backfill_sync.models import MAGE_PUBLIC_API_KEY

JWT_SECRET = b"materia"  # Mage's default JWT_SECRET
TOKEN_LIFETIME = timedelta(seconds=2592000)  # MAGE_ACCESS_TOKEN_EXPIRY_TIME default: 30 days


@dataclass(frozen=True, slots=True)
class Policy:
    """What a Mage resource policy lets a non-owner do: Viewers read; Editors also write, but only the
    listed attributes and query parameters (the owner skips these checks, BasePolicy)."""

    resource: str
    writable: Mapping[str, tuple[str, ...]]
    queryable: Mapping[str, tuple[str, ...]]


BACKFILLS = Policy(  # BackfillPolicy (mage-api.md §5.1)
    "backfills",
    writable={
        "create": ("name",),
        "update": (
            "block_uuid",
            "end_datetime",
            "interval_type",
            "interval_units",
            "name",
            "settings",
            "start_datetime",
            "status",
            "variables",
        ),
    },
    queryable={
        "detail": ("include_preview_runs", "include_run_count"),
        "list": ("include_run_count", "pipeline_uuid"),
    },
)
PIPELINE_RUNS = Policy(  # PipelineRunPolicy
    "pipeline_runs",
    writable={
        "create": (
            "backfill_id",
            "event_variables",
            "execution_date",
            "pipeline_schedule_id",
            "pipeline_uuid",
            "variables",
        ),
        "update": ("from_block_uuid", "pipeline_run_action", "status"),
    },
    queryable={
        "list": (
            "backfill_id",
            "disable_retries_grouping",
            "end_timestamp",
            "global_data_product_uuid",
            "include_all_pipeline_schedules",
            "include_pipeline_tags",
            "include_pipeline_type",
            "include_pipeline_uuids",
            "order_by[]",
            "pipeline_tag[]",
            "pipeline_type",
            "pipeline_uuid",
            "pipeline_uuid[]",
            "start_timestamp",
            "status",
            "status[]",
        ),
    },
)
PIPELINE_SCHEDULES = Policy(  # PipelineSchedulePolicy, the part a backfill's trigger needs
    "pipeline_schedules",
    writable={"update": ("description", "name", "settings", "status", "variables")},
    queryable={"detail": ("global_data_product_uuid", "order_by")},
)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is asking. With auth off every caller may do anything, like Mage's owner."""

    auth_on: bool
    user: User | None

    @property
    def privileged(self) -> bool:
        return not self.auth_on or (self.user is not None and self.user.owner)


def issue_token(store: Store, user: User) -> tuple[str, datetime]:
    """A new session: the JWT Mage hands out (payload {expires, token}) and its expiry."""
    raw = secrets.token_urlsafe(32)
    expires = now_utc() + TOKEN_LIFETIME
    with store.lock:
        store.tokens[raw] = Token(raw, user, expires)
    epoch = (expires - datetime(1970, 1, 1)).total_seconds()
    return encode_jwt({"expires": epoch, "token": raw}), expires


def encode_jwt(payload: dict[str, Any]) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    signature = hmac.new(JWT_SECRET, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def decode_jwt(token: str) -> dict[str, Any]:
    """The payload of a JWT signed with Mage's secret, or {} for anything else (as Mage's decode_token)."""
    try:
        header, body, signature = token.split(".")
        expected = hmac.new(JWT_SECRET, f"{header}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_unb64(signature), expected):
            return {}
        payload = json.loads(_unb64(body))
    except (ValueError, UnicodeDecodeError):
        return {}
    return payload if isinstance(payload, dict) else {}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def authenticate(request: Request, store: Store, auth_on: bool) -> Identity:
    """Mage's OAuthMiddleware: a wrong or missing key, or a bad token, is a real HTTP 401."""
    if not auth_on:
        return Identity(False, None)
    if api_key_of(request) != MAGE_PUBLIC_API_KEY:
        raise INVALID_API_KEY
    raw = _raw_token_of(request)
    if raw is None:
        return Identity(True, None)
    with store.lock:
        token = store.tokens.get(raw)
    if token is None:
        raise INVALID_OAUTH_TOKEN
    if token.expires <= now_utc():
        raise EXPIRED_OAUTH_TOKEN
    return Identity(True, token.user)


def api_key_of(request: Request) -> str | None:
    """X-API-KEY always; otherwise POST reads the JSON body (the query only if the body is not JSON),
    and every other method reads `?api_key=`."""
    key = request.header("X-API-KEY")
    if key:
        return key
    if request.method == "POST":
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return request.first("api_key")
        value = body.get("api_key") if isinstance(body, dict) else None
        return value if isinstance(value, str) else None
    return request.first("api_key")


def _raw_token_of(request: Request) -> str | None:
    header = request.header("OAUTH-TOKEN")
    if header:
        return header
    bearer = _bearer(request.header("Authorization") or "")
    if bearer:
        return bearer
    cookie = _cookie(request, "oauth_token")
    if cookie is None:
        return None
    # An unreadable cookie JWT still counts as a token presented, so it is a 401, not a 403.
    claimed = decode_jwt(cookie).get("token")
    return claimed if isinstance(claimed, str) else ""


def _bearer(authorization: str) -> str | None:
    for part in authorization.split(","):
        scheme, _, value = part.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


def _cookie(request: Request, name: str) -> str | None:
    header = request.header("Cookie")
    if not header:
        return None
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:
        return None
    morsel = cookies.get(name)
    return morsel.value if morsel is not None else None


def require_user(identity: Identity, action: str) -> None:
    """An api key without a user token may only log in."""
    if identity.auth_on and identity.user is None:
        raise forbidden(f"Private access for {action} only, invalid scope.")


def require_anonymous(identity: Identity, action: str) -> None:
    """SessionPolicy allows create for the public scope only: a caller who sends a valid user token
    is refused (BasePolicy.__validate_scopes), even with the right password."""
    if identity.auth_on and identity.user is not None:
        raise forbidden(f"Public access for {action} only, invalid scope.")


def authorize(
    identity: Identity,
    policy: Policy,
    action: str,
    query: dict[str, list[str]],
    payload: dict[str, Any] | None = None,
) -> None:
    """A policy's checks in Mage's order: actions by role, then query parameters, then written keys."""
    require_user(identity, action)
    if identity.privileged or identity.user is None:
        return
    if identity.user.role == "Viewer" and action in ("create", "update", "delete"):
        raise forbidden(f"Unauthorized operation {action} on {policy.resource}, failed condition.")
    allowed_query = policy.queryable.get(action, ())
    for key, values in query.items():
        if key.startswith("_") or key == "api_key" or key in allowed_query:
            continue
        raise forbidden(
            f"Query parameter {key} of value {values!r} is not permitted on {action} operation "
            f"for {policy.resource}."
        )
    writable = policy.writable.get(action, ())
    for key in payload or {}:
        if key not in writable:
            raise forbidden(f"write of {key} on {action} is disabled for {policy.resource}.")


def authorize_backfills(
    identity: Identity, action: str, query: dict[str, list[str]], payload: dict[str, Any] | None = None
) -> None:
    authorize(identity, BACKFILLS, action, query, payload)
