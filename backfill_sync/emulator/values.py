"""How Mage on SQLite turns request values into stored ones and back (datetimes, enums, integers)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from backfill_sync.emulator.apierrors import ServerError
from backfill_sync.models import INTERVAL_TYPES

# SQLAlchemy's Enum stores member *names*; it accepts members (the lower-case values) and, unvalidated,
# any string, which is then written as-is and fails every later read (mage-api.md §6, hazard 1).
INTERVAL_TYPE_NAMES = tuple(value.upper() for value in INTERVAL_TYPES)
_ENUM_VALUES_SHOWN = "SECOND, MINUTE, HOUR, ..., CUSTOM"

# Shapes that look like a date to dateutil even when a field is out of range ("2024-13-45").
_DATEISH = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}([T ].*)?$")


def parse_request_datetime(value: Any) -> Any:
    """What a datetime field becomes: strings are parsed (offset dropped, not converted), others kept.

    Non-strings go on to the database unparsed, where `reject_unstorable_datetime` refuses them.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("/", "-"))
    except ValueError as exc:
        reason = str(exc)
        if _DATEISH.match(text) and ("range" in reason or "must be in" in reason):
            raise ServerError(f"{reason}: {value}", "ParserError") from None
        raise ServerError(f"Unknown string format: {value}", "ParserError") from None
    # SQLite keeps the wall-clock string: the offset is dropped without converting (mage-api.md §4.3).
    return parsed.replace(tzinfo=None)


def reject_unstorable_datetime(value: Any) -> None:
    if value is not None and not isinstance(value, datetime):
        raise ServerError(
            "(builtins.TypeError) SQLite DateTime type only accepts Python datetime and date objects "
            "as input.\n[SQL: INSERT INTO backfill ...]",
            "StatementError",
        )


def store_interval_type(value: Any) -> Any:
    """The stored form of an interval_type, or a ServerError when SQLAlchemy refuses to bind it."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.upper() if value in INTERVAL_TYPES else value
    raise enum_lookup_error(value)


def read_interval_type(stored: Any) -> str | None:
    """The value Mage presents, or the LookupError every read of a poisoned row raises."""
    if stored is None:
        return None
    if stored in INTERVAL_TYPE_NAMES:
        return str(stored).lower()
    raise enum_lookup_error(stored)


def is_poisoned(stored_interval_type: Any) -> bool:
    return stored_interval_type is not None and stored_interval_type not in INTERVAL_TYPE_NAMES


def enum_lookup_error(value: Any) -> ServerError:
    return ServerError(
        f"'{value}' is not among the defined enum values. Enum name: intervaltype. "
        f"Possible values: {_ENUM_VALUES_SHOWN}",
        "LookupError",
    )


def store_interval_units(value: Any) -> Any:
    """SQLite INTEGER affinity: numeric text and integral reals become ints; other text is kept."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return _numeric_text(value)
    if isinstance(value, dict | list):
        raise ServerError(
            f"(sqlite3.ProgrammingError) Error binding parameter: type '{type(value).__name__}' "
            "is not supported",
            "ProgrammingError",
        )
    return value


def _numeric_text(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number


def format_datetime(value: datetime | None) -> str | None:
    """`str(datetime)` as Mage's to_dict does: `YYYY-MM-DD HH:MM:SS[.ffffff]`."""
    return None if value is None else str(value)


def now_utc() -> datetime:
    """A naive UTC wall-clock time with microseconds (started_at, completed_at, session expiry)."""
    return datetime.now(UTC).replace(tzinfo=None)


def now_utc_seconds() -> datetime:
    """created_at/updated_at: SQLite's server-side now(), one-second resolution."""
    return now_utc().replace(microsecond=0)


def query_flag(query: dict[str, list[str]], key: str) -> bool:
    """Mage only turns the exact strings true/false into booleans; any other non-empty string is truthy."""
    values = query.get(key)
    if not values:
        return False
    return values[0] != "false" and values[0] != ""


def parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ServerError(f"invalid literal for int() with base 10: {text!r}", "ValueError") from None
