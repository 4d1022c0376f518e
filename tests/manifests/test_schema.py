"""The JSON Schema file and the pure checks: one source of truth, exact semantic rules."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from backfill_sync.datetimes import MANIFEST_DATETIME_PATTERN
from backfill_sync.manifests.document import Document, format_path
from backfill_sync.manifests.schema import (
    check_across_files,
    check_document,
    file_pipeline_uuid,
    manifest_schema,
    schema_text,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "schemas" / "backfill-manifest.schema.json"
PACKAGED_FILE = ROOT / "backfill_sync" / "schemas" / "backfill-manifest.schema.json"


def backfill(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "reload",
        "start_datetime": "2024-01-01",
        "end_datetime": "2024-01-05",
        "interval_type": "day",
        "interval_units": 1,
    }
    entry.update(changes)
    return {key: value for key, value in entry.items() if value is not None}


def messages(data: Any, file: str = "sales.yaml", max_runs: int = 10_000) -> list[str]:
    return [f"{v.path}: {v.message}" for v in check_document(Document(file, data), max_runs)]


def manifest(*backfills: dict[str, Any]) -> dict[str, Any]:
    return {"pipeline_uuid": "sales", "backfills": list(backfills)}


def object_schemas(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            yield node
        for value in node.values():
            yield from object_schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from object_schemas(value)


def test_the_packaged_schema_is_identical_to_the_published_one():
    assert PACKAGED_FILE.read_bytes() == SCHEMA_FILE.read_bytes()
    assert schema_text() == SCHEMA_FILE.read_text(encoding="utf-8")


def test_the_schema_is_valid_2020_12_with_an_id():
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "https://backfill-sync.dev/schemas/backfill-manifest.schema.json"


def test_every_structured_object_refuses_unknown_keys_and_describes_its_fields():
    found = list(object_schemas(manifest_schema()))
    assert len(found) == 2  # the top level and a backfill; variables/settings are free-form
    for node in found:
        assert node["additionalProperties"] is False
        for name, rule in node["properties"].items():
            assert rule.get("description"), name


def test_the_datetime_pattern_is_the_parsers_pattern():
    assert manifest_schema()["$defs"]["datetime"]["pattern"] == MANIFEST_DATETIME_PATTERN


def test_the_schema_examples_are_valid_manifests():
    for example in manifest_schema()["examples"]:
        assert messages(example, file=f"{example['pipeline_uuid']}.yaml") == []


def test_schema_cli_prints_the_packaged_schema(capsys):
    from backfill_sync.cli import main

    assert main(["schema"]) == 0
    assert capsys.readouterr().out == SCHEMA_FILE.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(backfill(), id="minimal"),
        pytest.param(backfill(end_datetime="2024-01-01"), id="end-equals-start"),
        pytest.param(
            backfill(start_datetime="2024-01-01T00:00:00.000001Z", end_datetime="2024-01-01 00:00:00.000001"),
            id="micros",
        ),
        pytest.param(backfill(interval_type="custom", interval_units=5400), id="custom"),
        pytest.param(
            backfill(variables={}, settings={"a": [1]}, state="absent", id=1, description=""), id="optionals"
        ),
        pytest.param(backfill(name="x" * 255, previous_names=["reload 1", "y" * 255]), id="long-names"),
        pytest.param(backfill(name="Reload Q1 (EU) — ünïcode"), id="unicode-name"),
        pytest.param({"name": "old-one", "state": "absent"}, id="absent-name-only"),
        pytest.param(
            {"name": "old-one", "state": "absent", "id": 3, "previous_names": ["older"], "description": "x"},
            id="absent-without-schedule-with-optionals",
        ),
        pytest.param(
            backfill(state="absent", end_datetime=None, interval_units=None), id="absent-part-schedule"
        ),
    ],
)
def test_valid_backfills(entry):
    assert messages(manifest(entry)) == []


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(
            backfill(start_datetime="2024-01-01\n"),
            "backfills[0].start_datetime: '2024-01-01\\n' is not a date or datetime: "
            "use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]",
            id="trailing-newline",
        ),
        pytest.param(
            backfill(start_datetime="2024-02-30"),
            "backfills[0].start_datetime: '2024-02-30' is not a real date or time"
            " (day is out of range for month)",
            id="feb-30",
        ),
        pytest.param(
            backfill(end_datetime="2023-12-31T23:59:59Z"),
            "backfills[0].end_datetime: is before start_datetime: Mage would create no runs",
            id="end-before-start",
        ),
        pytest.param(
            backfill(interval_units=2**31),
            "backfills[0].interval_units: must be an integer >= 1 (at most 2147483647) (got 2147483648)",
            id="units-over-int32",
        ),
        pytest.param(
            backfill(id=2**31),
            "backfills[0].id: must be an integer from 1 to 2147483647: the id of a live Mage backfill"
            " (got 2147483648)",
            id="id-over-int32",
        ),
    ],
)
def test_semantic_violations(entry, expected):
    assert messages(manifest(entry)) == [expected]


PAST_THE_CALENDAR = (
    "backfills[0].interval_units: the step after end_datetime would pass 9999-12-31, where Mage fails "
    "computing run dates: use a smaller interval_units or an earlier end_datetime"
)


@pytest.mark.parametrize(
    ("interval_type", "units", "end", "expected"),
    [
        pytest.param("week", 2**31 - 1, "2024-02-01", [PAST_THE_CALENDAR], id="step-beyond-timedelta"),
        pytest.param("day", 1, "9999-12-31", [PAST_THE_CALENDAR], id="last-day-of-the-calendar"),
        pytest.param("year", 8000, "2024-02-01", [PAST_THE_CALENDAR], id="years-beyond-9999"),
        pytest.param("day", 1, "9999-12-30", [], id="one-day-before-the-end"),
        pytest.param("month", 12 * 7975, "2024-02-01", [], id="large-but-representable"),
    ],
)
def test_steps_that_mage_cannot_compute_are_refused(interval_type, units, end, expected):
    entry = backfill(interval_type=interval_type, interval_units=units, end_datetime=end)
    assert messages(manifest(entry), max_runs=10**9) == expected


@pytest.mark.parametrize(
    ("interval_type", "units", "end", "runs"),
    [
        pytest.param("second", 1, "2024-01-01T02:46:39Z", 10_000, id="seconds-at-limit"),
        pytest.param("second", 1, "2024-01-01T02:46:40Z", 10_001, id="seconds-over"),
        pytest.param("month", 1, "2857-04-01", 10_000, id="months-at-limit"),
        pytest.param("custom", 5400, "2024-01-01T02:00:00Z", 2, id="custom-seconds"),
    ],
)
def test_run_count_limit_is_inclusive(interval_type, units, end, runs):
    entry = backfill(interval_type=interval_type, interval_units=units, end_datetime=end)
    assert messages(manifest(entry), max_runs=runs) == []
    assert messages(manifest(entry), max_runs=runs - 1) == [
        f"backfills[0]: implies {runs} pipeline runs, more than --max-runs {runs - 1}: "
        "narrow the window, use a longer interval, or raise --max-runs"
    ]


def test_semantic_checks_skip_what_the_schema_rejected():
    # A bad interval_type must not also produce a run-count or date complaint.
    entry = backfill(interval_type="Hour", end_datetime="2024-01-01T00:00")
    assert messages(manifest(entry), max_runs=1) == [
        "backfills[0].end_datetime: must be a date YYYY-MM-DD or a datetime"
        ' YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM] (got "2024-01-01T00:00")',
        "backfills[0].interval_type: must be one of second, minute, hour, day, week, month, year, custom,"
        ' in lower case (got "Hour")',
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            [], "the top level must be a mapping with pipeline_uuid and backfills, not a list", id="list"
        ),
        pytest.param(
            "text",
            'the top level must be a mapping with pipeline_uuid and backfills, not a single value ("text")',
            id="scalar",
        ),
        pytest.param(
            None, "the top level must be a mapping with pipeline_uuid and backfills, not null", id="null"
        ),
    ],
)
def test_top_level_must_be_a_mapping(data, expected):
    assert messages(data) == [f": {expected}"]


@pytest.mark.parametrize(
    ("file", "stem"),
    [
        pytest.param("backfills/daily_sales.yaml", "daily_sales", id="yaml"),
        pytest.param("daily_sales.yml", "daily_sales", id="yml"),
        pytest.param("a.b.yaml", "a.b", id="dots"),
        pytest.param("x.txt", "x", id="other"),
    ],
)
def test_file_pipeline_uuid(file, stem):
    assert file_pipeline_uuid(file) == stem


def test_pinned_ids_are_unique_across_files_and_within_one():
    first = Document(
        "a.yaml", {"pipeline_uuid": "a", "backfills": [backfill(id=3), backfill(name="x", id=3)]}
    )
    second = Document("b.yaml", {"pipeline_uuid": "b", "backfills": [backfill(id=3)]})
    assert [str(v) for v in check_across_files([first, second])] == [
        "a.yaml:1:1: backfills[1].id: id 3 is already pinned at a.yaml:1:1",
        "b.yaml:1:1: backfills[0].id: id 3 is already pinned at a.yaml:1:1",
    ]


@pytest.mark.parametrize(
    ("path", "text"),
    [
        pytest.param((), "", id="root"),
        pytest.param(("backfills", 0, "name"), "backfills[0].name", id="nested"),
        pytest.param(("backfills", 1, "variables", "a.b"), 'backfills[1].variables["a.b"]', id="odd-key"),
        pytest.param(("variables", 'q"x'), 'variables["q\\"x"]', id="quote"),
    ],
)
def test_format_path(path, text):
    assert format_path(path) == text


SCHEDULE_MISSING = sorted(
    f"backfills[0]: missing required key {key!r}"
    for key in ("start_datetime", "end_datetime", "interval_type", "interval_units")
)


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param({"name": "a"}, id="no-state"),
        pytest.param({"name": "a", "state": "started"}, id="started"),
        pytest.param({"name": "a", "state": "cancelled"}, id="cancelled"),
    ],
)
def test_only_absent_entries_may_leave_out_the_schedule(entry):
    assert sorted(messages(manifest(entry))) == SCHEDULE_MISSING


def test_an_unknown_state_still_needs_the_schedule():
    found = messages(manifest({"name": "a", "state": "gone"}))
    assert sorted(m for m in found if "missing" in m) == SCHEDULE_MISSING
    assert 'backfills[0].state: must be one of started, cancelled, absent, or left out (got "gone")' in found


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(
            {"name": "a", "state": "absent", "interval_units": 0},
            "backfills[0].interval_units: must be an integer >= 1 (at most 2147483647) (got 0)",
            id="bad-units",
        ),
        pytest.param(
            backfill(state="absent", end_datetime="2023-12-31"),
            "backfills[0].end_datetime: is before start_datetime: Mage would create no runs",
            id="end-before-start",
        ),
        pytest.param(
            {"name": "a", "state": "absent", "start_datetime": "2024-02-30"},
            "backfills[0].start_datetime: '2024-02-30' is not a real date or time"
            " (day is out of range for month)",
            id="unreal-date",
        ),
    ],
)
def test_an_absent_entrys_schedule_is_still_checked_when_given(entry, expected):
    assert messages(manifest(entry)) == [expected]
