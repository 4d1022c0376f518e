"""Reduce desired and live backfills to one comparable form, then diff once.

Equal things must never show as changes: datetimes become UTC ISO strings (Mage answers naive wall-clock
strings), `interval_type` is lower-cased, and `variables`/`settings` treat null and {} as the same (Mage
cannot clear a field back to null). Server-owned fields (ids, timestamps, metrics, run counts) never take
part.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from backfill_sync.datetimes import format_iso
from backfill_sync.models import DesiredBackfill, FieldChange, LiveBackfill, status_class

# The Mage fields backfill-sync manages, in the order they are shown.
MANAGED_FIELDS: tuple[str, ...] = (
    "name",
    "start_datetime",
    "end_datetime",
    "interval_type",
    "interval_units",
    "variables",
    "settings",
)
_NESTED_FIELDS = frozenset({"variables", "settings"})
# Keys deepdiff shows as they are in its paths (others it quotes or escapes: those go through deepdiff).
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.\-]+")
_SCALARS = (str, int, float, bool, type(None))

Comparable = dict[str, Any]


def desired_fields(desired: DesiredBackfill) -> Comparable:
    """The fields a create or update aims at; never asked of an absent entry (it is deleted, not compared)."""
    schedule = desired.schedule
    assert schedule is not None, f"backfill {desired.name!r} has no schedule: only absent entries lack one"
    return {
        "name": desired.name,
        "start_datetime": format_iso(schedule.start),
        "end_datetime": format_iso(schedule.end),
        "interval_type": schedule.interval_type,
        "interval_units": schedule.interval_units,
        "variables": dict(desired.variables or {}),
        "settings": dict(desired.settings or {}),
    }


def live_fields(live: LiveBackfill) -> Comparable:
    return {
        "name": live.name,
        "start_datetime": None if live.start_datetime is None else format_iso(live.start_datetime),
        "end_datetime": None if live.end_datetime is None else format_iso(live.end_datetime),
        "interval_type": None if live.interval_type is None else live.interval_type.lower(),
        "interval_units": live.interval_units,
        "variables": dict(live.variables or {}),
        "settings": dict(live.settings or {}),
    }


def diff_fields(before: Comparable, after: Comparable) -> tuple[FieldChange, ...]:
    """The managed fields that differ, in display order, with per-key details for nested values."""
    return tuple(
        FieldChange(
            field=name,
            before=before[name],
            after=after[name],
            details=nested_details(before[name], after[name]) if name in _NESTED_FIELDS else (),
        )
        for name in MANAGED_FIELDS
        if not _same(before[name], after[name])
    )


def nested_details(before: Any, after: Any) -> tuple[str, ...]:
    """One line per changed key of a JSON object, e.g. `region: "eu" -> "us"`, via deepdiff (directly
    for flat objects with plain keys, the usual variables: the same lines, without deepdiff's cost)."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return ()  # a create (None -> object): the whole value is the change, keys add nothing
    if _flat(before) and _flat(after) and _mostly_shared(before, after):
        return flat_details(before, after)
    return deep_details(before, after)


def deep_details(before: dict[str, Any], after: dict[str, Any]) -> tuple[str, ...]:
    # Imported only for nested or odd values: plans of flat variables never need it, and it is slow
    # to import (asyncio and more come with it).
    from deepdiff import DeepDiff

    diff = DeepDiff(before, after, ignore_order=False, verbose_level=2)
    lines: list[str] = []
    for kind in ("values_changed", "type_changes"):
        for path, change in diff.get(kind, {}).items():
            lines.append(f"{_key(path)}: {_json(change['old_value'])} -> {_json(change['new_value'])}")
    for kind in ("dictionary_item_added", "iterable_item_added"):
        for path, value in diff.get(kind, {}).items():
            lines.append(f"{_key(path)}: added {_json(value)}")
    for kind in ("dictionary_item_removed", "iterable_item_removed"):
        for path, value in diff.get(kind, {}).items():
            lines.append(f"{_key(path)}: removed (was {_json(value)})")
    return tuple(sorted(lines))


def flat_details(before: dict[str, Any], after: dict[str, Any]) -> tuple[str, ...]:
    """deep_details of two objects whose values are all scalars and whose keys are plain names: a value
    of another type or another value is a change (as in deepdiff: 1 and 1.0, or true and 1, differ)."""
    lines = [
        f"{key}: {_json(before[key])} -> {_json(after[key])}"
        for key in before.keys() & after.keys()
        if not _same(before[key], after[key])
    ]
    lines += [f"{key}: added {_json(after[key])}" for key in after.keys() - before.keys()]
    lines += [f"{key}: removed (was {_json(before[key])})" for key in before.keys() - after.keys()]
    return tuple(sorted(lines))


def _mostly_shared(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether most keys are in both: with few in common, deepdiff (8 and later) calls the whole object
    changed rather than list its keys."""
    union = len(before.keys() | after.keys())
    return union <= 1 or len(before.keys() & after.keys()) >= union / 2


def _flat(value: dict[Any, Any]) -> bool:
    return all(
        isinstance(key, str) and _PLAIN_KEY.fullmatch(key) is not None and isinstance(item, _SCALARS)
        for key, item in value.items()
    )


def fingerprint(live: LiveBackfill, fields: Comparable | None = None) -> str:
    """What a saved plan remembers of a live backfill: managed fields and status class, not timestamps.
    `fields`: its live_fields, when the caller has them already (a plan compares them too)."""
    fields = live_fields(live) if fields is None else fields
    payload = {"id": live.id, "fields": fields, "status_class": status_class(live.status)}
    encoded = json.dumps(payload, sort_keys=True, default=str).encode()
    return "sha256:" + hashlib.sha256(encoded).hexdigest()[:32]


def _same(before: Any, after: Any) -> bool:
    """JSON equality: 1 and 1.0, or true and 1, differ (Python's == says they are equal)."""
    if type(before) is not type(after):
        return False
    if isinstance(before, dict):
        # map, not a generator: this runs for every key of every backfill a plan compares.
        return before.keys() == after.keys() and all(
            map(_same, before.values(), map(after.__getitem__, before))
        )
    if isinstance(before, list):
        return len(before) == len(after) and all(map(_same, before, after))
    return bool(before == after)


def _json(value: Any) -> str:
    """Values as the manifest's reader knows them: JSON, not Python reprs."""
    return json.dumps(value, default=str)


def _key(path: str) -> str:
    """deepdiff's `root['a']['b']` as `a.b`."""
    inner = path.removeprefix("root")
    parts = [part.strip("'\"") for part in inner.strip("[]").split("][") if part]
    return ".".join(parts) or "(whole value)"
