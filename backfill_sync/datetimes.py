"""Datetime grammar of manifests, and the forms Mage sends and accepts. Everything is UTC inside."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

# The manifest grammar (the schema's `pattern` says the same): a date, or a date and a time with
# seconds, up to microseconds, and an optional offset. Naive values are UTC.
MANIFEST_DATETIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?)?$"
)
_MANIFEST_RE = re.compile(MANIFEST_DATETIME_PATTERN)


# Each manifest datetime is parsed twice (checked, then built), and many entries share their dates; a
# datetime is immutable, so the latest few thousand are kept (errors are not: they are raised anew).
@lru_cache(maxsize=4096)
def parse_manifest_datetime(text: str) -> datetime:
    """Parse a manifest datetime into an aware UTC datetime; ValueError says what is wrong."""
    if not _MANIFEST_RE.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a date or datetime: use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]"
        )
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        reason = "the offset must be between -23:59 and +23:59" if "offset" in str(exc) else str(exc)
        raise ValueError(f"{text!r} is not a real date or time ({reason})") from None
    try:
        return to_utc(value)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
        edge = "before year 1" if value.year == 1 else "after year 9999"
        raise ValueError(f"{text!r} falls {edge} in UTC, which no datetime can hold") from None


def parse_mage_datetime(text: str) -> datetime:
    """Parse any form Mage returns: `2024-01-01 00:00:00[.ffffff][+00:00]` or ISO with `T`."""
    return to_utc(datetime.fromisoformat(text))


def to_utc(value: datetime) -> datetime:
    """Naive values are UTC (Mage stores wall-clock strings); aware ones are converted."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_for_mage(value: datetime) -> str:
    """UTC `YYYY-MM-DD HH:MM:SS[.ffffff]`: Mage drops offsets instead of converting (mage-api.md §4.3)."""
    utc = to_utc(value)
    return utc.replace(tzinfo=None).isoformat(sep=" ")


def format_iso(value: datetime) -> str:
    """The canonical display form: `2024-01-01T00:00:00Z`, microseconds only when non-zero."""
    if value.tzinfo is UTC:  # every datetime inside: a plan formats six per backfill it compares
        return value.isoformat()[:-6] + "Z"
    return to_utc(value).replace(tzinfo=None).isoformat() + "Z"
