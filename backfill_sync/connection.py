"""Check and normalise how the user told us to reach Mage, before any request is made.

Credentials often come from secret stores and files with a trailing newline; a newline in a header makes
the HTTP library fail with a message that quotes the header, secret included. So values are trimmed,
anything else unprintable is refused (without echoing it), and a URL must not carry credentials of its own.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from backfill_sync.errors import UsageError
from backfill_sync.models import DEFAULT_REQUEST_TIMEOUT, MageConnection
from backfill_sync.safe_text import masked_url


def build_connection(
    url: str,
    api_key: str,
    token: str | None,
    email: str | None,
    password: str | None,
    *,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
) -> MageConnection:
    return MageConnection(
        url=check_url(url),
        api_key=_header_value("--api-key / MAGE_API_KEY", api_key) or "",
        token=_header_value("--token / MAGE_TOKEN", token),
        email=_trimmed(email),
        password=password or None,
        request_timeout=request_timeout,
    )


def check_url(url: str) -> str:
    """An http(s) URL without credentials in it, without a trailing slash."""
    text = url.strip()
    # Quoted back without any password in it: `ftp://user:pw@host` is a URL with credentials too.
    wrong = UsageError(f"--url / MAGE_URL must look like http://host:6789, got {masked_url(text)!r}")
    try:
        parts = urlsplit(text)
        hostname, _ = parts.hostname, parts.port
    except ValueError:  # `http://[::1` (an unclosed IPv6 address), a port that is not a port number
        raise wrong from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise wrong
    if parts.username or parts.password:
        raise UsageError(
            "--url / MAGE_URL must not contain credentials; use --token or --email/--password instead"
        )
    return text.rstrip("/")


def _header_value(option: str, value: str | None) -> str | None:
    text = _trimmed(value)
    if text is not None and not (text.isascii() and text.isprintable() and " " not in text):
        raise UsageError(f"{option} contains spaces or characters a header cannot carry (value not shown)")
    return text


def _trimmed(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None
