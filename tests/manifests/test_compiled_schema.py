"""The compiled check says yes exactly where jsonschema finds nothing wrong."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from backfill_sync.manifests import schema as manifest_schema_module
from backfill_sync.manifests.compiled_schema import UnsupportedSchema, compile_schema
from backfill_sync.manifests.document import Document
from backfill_sync.manifests.schema import _validator, check_against_schema, manifest_schema
from backfill_sync.manifests.yaml_loader import parse_yaml
from tests.test_validate_cli import INVALID

VALID: dict[str, Any] = {
    "pipeline_uuid": "sales",
    "backfills": [
        {
            "name": "reload",
            "description": "why",
            "id": 7,
            "previous_names": ["old"],
            "start_datetime": "2024-01-01",
            "end_datetime": "2024-01-31T00:00:00Z",
            "interval_type": "day",
            "interval_units": 1,
            "variables": {"region": "eu", "nested": {"a": [1, None]}},
            "settings": {},
            "state": "started",
        },
        {"name": "gone", "state": "absent"},
    ],
}
ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    2.5,
    2_147_483_647,
    2_147_483_648,
    "",
    " ",
    "x",
    " x",
    "x ",
    "a\nb",
    "\x7f",
    "a" * 255,
    "a" * 256,
    "day",
    "Hour",
    "started",
    "absent",
    "2024-01-01",
    "2024-01-01T00:00",
    "2024-13-01T00:00:00+02:00",
    "daily sales",
    "reload\u200beu",
    "\u202eue-daoler",
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
    "tagged\U000e0041",
    "-x",
    "../x",
    [],
    ["old"],
    ["old", "old"],
    [1, 1.0],
    [True, 1],
    [{}],
    {},
    {"a": 1},
]


def mutations() -> Iterator[Any]:
    """The valid manifest with one thing changed, in every way ODD_VALUES allow."""
    yield copy.deepcopy(VALID)
    for key in VALID:
        for value in ODD_VALUES:
            changed = copy.deepcopy(VALID)
            changed[key] = value
            yield changed
    for key in [*VALID["backfills"][0], "block_uuid", "unknown", "interval_unit"]:
        for value in [*ODD_VALUES, "<missing>"]:
            changed = copy.deepcopy(VALID)
            if value == "<missing>":
                changed["backfills"][0].pop(key, None)
                changed["backfills"][1].pop(key, None)
            else:
                changed["backfills"][0][key] = value
                changed["backfills"][1][key] = value
            yield changed
    for value in ODD_VALUES:
        yield value
        changed = copy.deepcopy(VALID)
        changed["backfills"].append(value)
        yield changed


def fixture_data() -> Iterator[Any]:
    for path in sorted(INVALID.glob("*/*.y*ml")):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        document, _ = parse_yaml(text, path.name)
        if document is not None:
            yield document.data


CHECK = compile_schema(manifest_schema())


def jsonschema_valid(instance: Any) -> bool:
    return not any(True for _ in _validator().iter_errors(instance))


def test_it_agrees_with_jsonschema_on_every_mutation_and_fixture():
    instances = [*mutations(), *fixture_data(), *manifest_schema()["examples"]]
    assert len(instances) > 700
    verdicts = [(CHECK(instance), jsonschema_valid(instance)) for instance in instances]
    disagreements = [
        instance for instance, (quick, full) in zip(instances, verdicts, strict=True) if quick != full
    ]
    assert disagreements == []
    # Both kinds of answer were exercised, not only one.
    assert {quick for quick, _ in verdicts} == {True, False}


def test_where_unsure_it_leaves_the_answer_to_jsonschema():
    odd = copy.deepcopy(VALID)
    odd["backfills"][0]["previous_names"] = [1, 1.0]  # jsonschema's own equality decides repeats
    assert CHECK(odd) is False
    assert CHECK({"pipeline_uuid": b"sales", "backfills": []}) is False


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        pytest.param({"patternProperties": {"^x": {}}}, "keyword 'patternProperties'", id="unknown-keyword"),
        pytest.param({"$ref": "https://example.com/s.json"}, "outside this schema", id="remote-ref"),
        pytest.param({"$ref": "#/$defs/nowhere"}, "does not resolve", id="missing-ref"),
        pytest.param({"$defs": {"x": {"$ref": "#/$defs/x"}}, "$ref": "#/$defs/x"}, "recursive", id="loop"),
        pytest.param({"type": "decimal"}, "type 'decimal'", id="unknown-type"),
        pytest.param({"enum": [1, 2]}, "enum members other than strings", id="numeric-enum"),
    ],
)
def test_a_schema_it_cannot_follow_exactly_does_not_compile(schema, reason):
    with pytest.raises(UnsupportedSchema, match=reason):
        compile_schema(schema)


def test_without_a_compiled_check_jsonschema_checks_everything(monkeypatch):
    monkeypatch.setattr(manifest_schema_module, "_quick_check", lambda: None)
    broken = copy.deepcopy(VALID)
    broken["backfills"][0]["interval_units"] = 0
    found = check_against_schema(Document("sales.yaml", broken))
    assert [violation.path for violation in found] == ["backfills[0].interval_units"]
    assert check_against_schema(Document("sales.yaml", copy.deepcopy(VALID))) == []


def test_the_shipped_schema_compiles():
    # Otherwise validate still works, through jsonschema alone, many times slower.
    assert manifest_schema_module._quick_check() is not None
