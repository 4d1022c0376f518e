"""The three ways Mage fails a request, as exceptions the handlers raise and the server renders."""

from __future__ import annotations

from dataclasses import dataclass


class EmulatedFailure(Exception):
    """Base of every failure a handler raises to produce one of Mage's error answers."""


@dataclass
class HandledError(EmulatedFailure):
    """An ApiError Mage catches (403/404/400): HTTP 200 unless `_http_error_codes=true`."""

    code: int
    message: str
    type: str


@dataclass
class AuthFailure(EmulatedFailure):
    """A middleware rejection: always a real HTTP 401."""

    message: str
    type: str


@dataclass
class ServerError(EmulatedFailure):
    """An unhandled exception inside Mage: HTTP 200 with a traceback body, whatever the flags."""

    exception: str
    exc_class: str = "Exception"


INVALID_API_KEY = AuthFailure("Invalid API key.", "invalid_api_key")
INVALID_OAUTH_TOKEN = AuthFailure("Invalid OAuth token.", "invalid_oauth_token")
EXPIRED_OAUTH_TOKEN = AuthFailure("Expired OAuth token.", "expired_oauth_token")

RECORD_NOT_FOUND = "Record not found."
# Mage's SessionResource mutates its shared 404 dict on every password login (mage-api.md §6, hazard 4).
LOGIN_FAILED = "Email/username and/or password invalid."


def forbidden(message: str) -> HandledError:
    return HandledError(403, message, "unauthorized_access")


def not_found(message: str) -> HandledError:
    return HandledError(404, message, "record_not_found")


def missing_pipeline(uuid: str) -> ServerError:
    return ServerError(f"Pipeline {uuid} does not exist.")
