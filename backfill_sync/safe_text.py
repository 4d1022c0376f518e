"""Text from outside (Mage's answers, the command line) made safe to print: escaped and scrubbed.

A backfill name, a pipeline uuid or an error message from Mage may hold ANSI escapes that repaint a
terminal, a newline followed by `::error ...` that GitHub Actions would run as a workflow command, or
bidi controls that make a CI log lie. Printed text shows such characters as escapes instead
(`\\x1b`, `\\n`, `\\u202e`), the way `repr` would, but leaves every other character alone so names in
any script stay readable. ZWJ and ZWNJ are kept: Persian, Indic scripts and emoji need them.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

# Control (C0, DEL, C1), invisible format, lone surrogate, line and paragraph separator characters.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_KEPT_FORMAT_CHARACTERS = frozenset({"\u200c", "\u200d"})  # ZWNJ, ZWJ
_LINE_BREAK = re.compile(r"(\r\n|\n)")
_SECRET_MASK = "***"
# Shorter secrets are not looked for: replacing every "pw" in a message would garble it and hide little.
_MIN_SECRET_LENGTH = 4
_MAX_DETAIL = 500  # characters of one server-supplied detail that an error message quotes


def needs_escape(char: str) -> bool:
    return unicodedata.category(char) in _ESCAPED_CATEGORIES and char not in _KEPT_FORMAT_CHARACTERS


def printable(text: str) -> str:
    """`text` with every control, invisible-format and separator character written as an escape."""
    if text.isascii() and text.isprintable():
        return text  # the common case, at C speed
    return "".join(_escape(char) if needs_escape(char) else char for char in text)


def printable_lines(text: str) -> str:
    """Like `printable`, but keeps the line breaks (`\\n`, `\\r\\n`) of a message of several lines of our
    own; text from outside in it has been made `printable` before, so it has no line break left."""
    pieces = _LINE_BREAK.split(text)
    return "".join(piece if index % 2 else printable(piece) for index, piece in enumerate(pieces))


def json_safe(document: str) -> str:
    """A JSON text with the characters `printable` escapes written as `\\uXXXX` instead.

    Lossless: outside strings JSON is plain ASCII, and inside them `\\uXXXX` means the same character.
    (`json.dumps` already escapes C0 controls; DEL, C1, bidi controls and separators it leaves raw, and
    a lone surrogate from Mage would make the output fail to encode.)
    """
    if document.isascii() and "\x7f" not in document:
        return document
    # C0 characters are left alone: inside strings json.dumps has escaped them already, and outside
    # them they are the document's own line breaks and indentation.
    return "".join(_json_escape(char) if char >= "\x7f" and needs_escape(char) else char for char in document)


def shorten(text: str, limit: int = _MAX_DETAIL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def masked_url(url: str) -> str:
    """A URL as it may be quoted back: everything before its last `@` (user, password) replaced by ***.

    Cruder than a URL parser on purpose: `ftp://user:p/w@host` hides a password that no parser would
    call one, and masking too much in an error message costs nothing.
    """
    scheme, separator, rest = url.rpartition("://") if "://" in url else ("", "", url)
    if "@" not in rest:
        return url
    return f"{scheme}{separator}{_SECRET_MASK}@{rest.rpartition('@')[2]}"


class Secrets:
    """The credentials of one session, found and masked in any text in the forms a server might echo
    them: as sent, JSON-escaped and percent-encoded."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._forms: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < _MIN_SECRET_LENGTH:
            return
        self._forms.update(
            form
            for form in (secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret))
            if len(form) >= _MIN_SECRET_LENGTH
        )

    def scrub(self, text: str) -> str:
        # Longest first, so that a form containing another is masked whole.
        for form in sorted(self._forms, key=len, reverse=True):
            if form in text:
                text = text.replace(form, _SECRET_MASK)
        return text

    def clean(self, text: str) -> str:
        """Server-supplied text for an error message: scrubbed, escaped, and cut to a readable length."""
        return shorten(printable(self.scrub(text)))


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{code:02x}")
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    high, low = divmod(code - 0x10000, 0x400)  # JSON spells astral characters as a surrogate pair
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"
