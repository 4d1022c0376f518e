"""Manifest checks without I/O: the shipped JSON Schema, then the semantic rules Mage does not enforce."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from backfill_sync.datetimes import MANIFEST_DATETIME_PATTERN, parse_manifest_datetime
from backfill_sync.manifests.compiled_schema import Check, UnsupportedSchema, compile_schema
from backfill_sync.manifests.document import Document, FieldPath, format_path
from backfill_sync.manifests.visible_text import hidden_characters, hidden_characters_message
from backfill_sync.models import INTERVAL_TYPES, Schedule, Violation
from backfill_sync.runs import RETRY_LATER_THAN_NOW
from backfill_sync.schedule import count_runs, next_run_date

if TYPE_CHECKING:  # jsonschema is imported only when a manifest is invalid: it is slow to import
    from jsonschema import ValidationError
    from jsonschema.protocols import Validator

SCHEMA_RESOURCE = "backfill-manifest.schema.json"
MANIFEST_SUFFIXES = (".yaml", ".yml")
_DATETIME_GRAMMAR = re.compile(MANIFEST_DATETIME_PATTERN)

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def schema_text() -> str:
    return (files("backfill_sync") / "schemas" / SCHEMA_RESOURCE).read_text(encoding="utf-8")


@cache
def manifest_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_text())
    return schema


def _is_strict_integer(_checker: object, instance: object) -> bool:
    # JSON Schema counts 1.0 as an integer; Mage would store the float as-is (mage-api.md §6.3).
    return isinstance(instance, int) and not isinstance(instance, bool)


MAX_MAGE_INTEGER = 2_147_483_647  # Mage's Integer columns (interval_units, id); the schema's maximum


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 1 <= value <= MAX_MAGE_INTEGER else None


@cache
def _validator() -> Validator:
    from jsonschema import Draft202012Validator, validators

    strict = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_strict_integer)
    manifest_validator = validators.extend(Draft202012Validator, type_checker=strict)
    validator: Validator = manifest_validator(manifest_schema())
    return validator


@cache
def _quick_check() -> Check | None:
    """The schema as a compiled yes/no check, or None when it cannot be compiled (jsonschema then decides)."""
    try:
        return compile_schema(manifest_schema())
    except UnsupportedSchema:
        return None


def file_pipeline_uuid(file: str) -> str:
    """The pipeline a manifest file is for: its name without .yaml/.yml."""
    name = PurePath(file).name
    for suffix in MANIFEST_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return PurePath(file).stem


def check_document(document: Document, max_runs: int) -> list[Violation]:
    """Every problem of one manifest: schema first, then the semantic rules (which skip invalid parts)."""
    if not isinstance(document.data, dict):
        kind = _describe(document.data)
        message = f"the top level must be a mapping with pipeline_uuid and backfills, not {kind}"
        return [document.violation((), message)]
    found = check_against_schema(document) + check_semantics(document, max_runs)
    return sort_violations([*document.parse_problems, *found])


def sort_violations(violations: Sequence[Violation]) -> list[Violation]:
    """Unique violations in file order, then line, column, path."""
    return sorted(set(violations), key=lambda v: (v.line, v.col, v.path, v.message))


def check_against_schema(document: Document) -> list[Violation]:
    quick = _quick_check()
    if quick is not None and quick(document.data):
        return []
    found: list[Violation] = []
    for error in _validator().iter_errors(document.data):
        found.extend(_violations_of(error, document))
    return found


def _violations_of(error: ValidationError, document: Document) -> list[Violation]:
    path: FieldPath = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if schema is manifest_schema()["$defs"]["visible_text"]:
        return []  # check_visible_text says it better: which character, and where
    if error.validator == "required":
        missing = [key for key in error.validator_value if key not in error.instance]
        return [document.violation(path, f"missing required key {key!r}") for key in missing]
    if error.validator == "additionalProperties":
        known = schema.get("properties", {})
        extra = [key for key in error.instance if key not in known]
        return [document.violation((*path, key), _unknown_key(key, known), at_key=True) for key in extra]
    message = schema.get("errorMessage") or _generic_message(error)
    if error.validator != "not" and _is_scalar(error.instance):
        message += f" (got {_show(error.instance)})"
    return [document.violation(path, message)]


def _unknown_key(key: str, known: dict[str, Any]) -> str:
    # Keys the schema only names to forbid (block_uuid) are not suggested.
    allowed = [name for name, rule in known.items() if "not" not in rule]
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return f"unknown key {key!r}; did you mean {close[0]!r}?"
    return f"unknown key {key!r}; allowed keys: {', '.join(allowed)}"


def _generic_message(error: ValidationError) -> str:
    if error.validator == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        return "must be " + " or ".join(_TYPE_NAMES.get(name, name) for name in names)
    if error.validator == "uniqueItems":
        return "must not list the same value twice"
    return str(error.message)


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _show(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return f"a single value ({_show(value)})"


def check_semantics(document: Document, max_runs: int, now: datetime | None = None) -> list[Violation]:
    """The rules JSON Schema cannot say; each skips values the schema already rejected."""
    found = check_pipeline_uuid(document)
    backfills = document.data.get("backfills")
    if isinstance(backfills, list):
        found += check_names(document, backfills)
        for index, backfill in enumerate(backfills):
            if isinstance(backfill, dict):
                found += check_backfill_window(document, ("backfills", index), backfill, max_runs)
                found += check_retry_instant(document, ("backfills", index), backfill, now)
                found += check_visible_text(document, ("backfills", index), backfill)
    return found


def check_visible_text(document: Document, path: FieldPath, backfill: dict[str, Any]) -> list[Violation]:
    """What reviewers read of a backfill (name, previous names, description) hides no characters."""
    texts: list[tuple[FieldPath, object]] = [
        ((*path, "name"), backfill.get("name")),
        ((*path, "description"), backfill.get("description")),
    ]
    previous = backfill.get("previous_names")
    if isinstance(previous, list):
        texts += [((*path, "previous_names", index), name) for index, name in enumerate(previous)]
    found = []
    for where, text in texts:
        hidden = hidden_characters(text) if isinstance(text, str) else []
        if hidden:
            found.append(document.violation(where, hidden_characters_message(hidden)))
    return found


def check_retry_instant(
    document: Document, path: FieldPath, backfill: dict[str, Any], now: datetime | None = None
) -> list[Violation]:
    """retry_failed_before is a time that has passed (by this machine's clock; plan checks Mage's), on
    a backfill that runs."""
    value = backfill.get("retry_failed_before")
    if not isinstance(value, str) or not _matches_grammar(value):
        return []
    where = (*path, "retry_failed_before")
    try:
        instant = parse_manifest_datetime(value)
    except ValueError as exc:
        return [document.violation(where, str(exc))]
    state = backfill.get("state")
    if state in ("cancelled", "absent"):
        return [
            document.violation(
                where, f"retries failed dates, which a backfill with state: {state} does not have"
            )
        ]
    clock = now or datetime.now(UTC)
    if instant > clock:
        return [document.violation(where, "is in the future" + RETRY_LATER_THAN_NOW)]
    return []


def check_pipeline_uuid(document: Document) -> list[Violation]:
    declared = document.data.get("pipeline_uuid")
    expected = file_pipeline_uuid(document.file)
    if not isinstance(declared, str) or declared == expected:
        return []
    name = PurePath(document.file).name
    message = f"must equal the file name: {name} must hold pipeline_uuid: {expected} (got {_show(declared)})"
    return [document.violation(("pipeline_uuid",), message)]


def check_names(document: Document, backfills: list[Any]) -> list[Violation]:
    """Names identify backfills: unique, and no previous name may be in use or claimed twice."""
    found: list[Violation] = []
    current: dict[str, FieldPath] = {}
    for path, name in _names(backfills, "name"):
        if name in current:
            found.append(
                document.violation(
                    path, f"{_show(name)} is already the name of {_where(document, current[name])}"
                )
            )
        else:
            current[name] = path
    previous: dict[str, FieldPath] = {}
    for path, name in _names(backfills, "previous_names"):
        if name in current:
            message = f"{_show(name)} is the current name of {_where(document, current[name])}"
            found.append(document.violation(path, message))
        elif name in previous and previous[name][:2] != path[:2]:
            message = f"{_show(name)} is already a previous name of {_where(document, previous[name])}"
            found.append(document.violation(path, message))
        else:
            previous.setdefault(name, path)
    return found


def _names(backfills: list[Any], key: str) -> Iterator[tuple[FieldPath, str]]:
    for index, backfill in enumerate(backfills):
        if not isinstance(backfill, dict):
            continue
        value = backfill.get(key)
        if key == "name" and isinstance(value, str):
            yield ("backfills", index, "name"), value
        elif key == "previous_names" and isinstance(value, list):
            for position, name in enumerate(value):
                if isinstance(name, str):
                    yield ("backfills", index, key, position), name


def _where(document: Document, path: FieldPath) -> str:
    backfill = format_path(path[:2])
    return f"{backfill} (line {document.value_position(path)[0]})"


def check_backfill_window(
    document: Document, path: FieldPath, backfill: dict[str, Any], max_runs: int
) -> list[Violation]:
    """Real dates, end >= start, and no more than max_runs runs, counted exactly as Mage would."""
    found: list[Violation] = []
    moments = {}
    for key in ("start_datetime", "end_datetime"):
        value = backfill.get(key)
        if not isinstance(value, str) or not _matches_grammar(value):
            continue
        try:
            moments[key] = parse_manifest_datetime(value)
        except ValueError as exc:
            found.append(document.violation((*path, key), str(exc)))
    start, end = moments.get("start_datetime"), moments.get("end_datetime")
    if start is None or end is None:
        return found
    if end < start:
        message = "is before start_datetime: Mage would create no runs"
        return [*found, document.violation((*path, "end_datetime"), message)]
    schedule = _schedule(start, end, backfill)
    if schedule is None:
        return found
    if _steps_past_the_calendar(schedule):
        message = (
            "the step after end_datetime would pass 9999-12-31, where Mage fails computing run dates: "
            "use a smaller interval_units or an earlier end_datetime"
        )
        return [*found, document.violation((*path, "interval_units"), message)]
    runs = count_runs(schedule)
    if runs > max_runs:
        message = (
            f"implies {runs} pipeline runs, more than --max-runs {max_runs}: "
            "narrow the window, use a longer interval, or raise --max-runs"
        )
        found.append(document.violation(path, message))
    return found


def _steps_past_the_calendar(schedule: Schedule) -> bool:
    # Mage adds one more step after the last run before it stops (`while current <= end`); if that step
    # cannot be represented it raises instead of stopping. Checking from end_datetime is the safe bound.
    try:
        return next_run_date(schedule, schedule.end) is None
    except OverflowError:  # the step itself is larger than a timedelta can hold
        return True


def _matches_grammar(value: str) -> bool:
    # Values off the grammar were reported by the schema already (jsonschema uses re.search, as here);
    # whatever it let through is parsed, so nothing slips past both.
    return _DATETIME_GRAMMAR.search(value) is not None


def _schedule(start: Any, end: Any, backfill: dict[str, Any]) -> Schedule | None:
    interval_type = backfill.get("interval_type")
    units = _positive_int(backfill.get("interval_units"))
    if interval_type not in INTERVAL_TYPES or units is None:
        return None
    return Schedule(start, end, interval_type, units)


def check_across_files(documents: Sequence[Document]) -> list[Violation]:
    """One file per pipeline, and one entry per pinned Mage id, over every manifest given."""
    found: list[Violation] = []
    pipelines: dict[str, Document] = {}
    ids: dict[int, tuple[Document, FieldPath]] = {}
    for document in documents:
        if not isinstance(document.data, dict):
            continue
        declared = document.data.get("pipeline_uuid")
        pipeline = declared if isinstance(declared, str) else file_pipeline_uuid(document.file)
        if pipeline in pipelines:
            owner = pipelines[pipeline].file
            message = f"pipeline {pipeline!r} is already managed by {owner}: one file per pipeline"
            found.append(document.violation(("pipeline_uuid",), message))
        pipelines.setdefault(pipeline, document)
        for path, backfill_id in _pinned_ids(document):
            if backfill_id in ids:
                other, other_path = ids[backfill_id]
                line, col = other.value_position(other_path)
                message = f"id {backfill_id} is already pinned at {other.file}:{line}:{col}"
                found.append(document.violation(path, message))
            ids.setdefault(backfill_id, (document, path))
    return found


def across_files_part(document: Document) -> Document:
    """The part of a document check_across_files looks at: its pipeline_uuid and pinned ids, with where
    they are written."""
    if not isinstance(document.data, dict):
        return Document(document.file, document.data)
    data: dict[str, Any] = {}
    paths: list[FieldPath] = [()]
    if "pipeline_uuid" in document.data:
        data["pipeline_uuid"] = document.data["pipeline_uuid"]
        paths.append(("pipeline_uuid",))
    pinned = list(_pinned_ids(document))
    if pinned:
        backfills: list[dict[str, Any]] = [{} for _ in document.data["backfills"]]
        for path, backfill_id in pinned:
            backfills[int(path[1])]["id"] = backfill_id
            paths += [path, path[:2], path[:1]]
        data["backfills"] = backfills
    values = {path: document.values[path] for path in paths if path in document.values}
    return Document(document.file, data, values)


def _pinned_ids(document: Document) -> Iterator[tuple[FieldPath, int]]:
    backfills = document.data.get("backfills")
    if not isinstance(backfills, list):
        return
    for index, backfill in enumerate(backfills):
        value = _positive_int(backfill.get("id")) if isinstance(backfill, dict) else None
        if value is not None:
            yield ("backfills", index, "id"), value
