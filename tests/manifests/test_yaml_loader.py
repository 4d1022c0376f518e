"""Two parsers, one reading: libyaml where it agrees with PyYAML's pure-Python parser, PyYAML elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from backfill_sync.cli import main
from backfill_sync.manifests import yaml_events, yaml_loader
from backfill_sync.manifests.yaml_loader import parse_yaml
from tests.test_validate_cli import EXAMPLES, INVALID, INVALID_CASES, expected_lines

needs_libyaml = pytest.mark.skipif(not yaml_events.HAVE_LIBYAML, reason="PyYAML was built without libyaml")


def _utf8(path: Path) -> bool:
    try:
        path.read_text(encoding="utf-8")
    except UnicodeDecodeError:  # refused before any parser runs
        return False
    return True


EVERY_FIXTURE = sorted(
    path
    for path in [*INVALID.glob("*/*.yaml"), *INVALID.glob("*/*.yml"), *EXAMPLES.glob("*.yaml")]
    if _utf8(path)
)

MANIFEST = """\
pipeline_uuid: sales   # the file is sales.yaml
backfills:
  - name: reload
    start_datetime: 2024-01-01
    end_datetime: '2024-01-05T12:00:00Z'
    interval_type: day
    interval_units: 1
    variables: {region: eu, ratio: 0.5, on_time: true, tags: [a, "b"]}
    description: |
      Two lines,
      kept as written.
"""


def both(text: str) -> tuple[object, object]:
    return parse_yaml(text, "x.yaml", libyaml=True), parse_yaml(text, "x.yaml", libyaml=False)


@needs_libyaml
@pytest.mark.parametrize("path", EVERY_FIXTURE, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_both_parsers_read_every_fixture_alike(path):
    with_libyaml, without = both(path.read_text(encoding="utf-8"))
    assert with_libyaml == without


@needs_libyaml
@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: b\t\n", id="tab-after-a-value"),
        pytest.param("a:\n\t- b\n", id="tab-indent"),
        pytest.param("a: b\ufeffc\nd: 1\n", id="bom-inside"),
        pytest.param("a: |#x\n  b\n", id="block-header-into-comment"),
        pytest.param("a: {b: }\n", id="empty-flow-value"),
        pytest.param("a: !\n", id="non-specific-tag-on-nothing"),
        pytest.param("a: [!!str ]\n", id="tagged-empty-value"),
        pytest.param("a: [<<: ]\n", id="merge-of-nothing"),
        pytest.param("a: {b: c? d}\n", id="question-mark-in-flow"),
        pytest.param("---\n", id="empty-document"),
        pytest.param("? a\n", id="key-without-value"),
        pytest.param("a: [1, 2\n", id="unclosed-flow"),
        pytest.param("a: 1\n---\nb: 2\n", id="two-documents"),
        pytest.param("a: *nowhere\n", id="undefined-alias"),
        pytest.param("a: &x 1\nb: &x 2\n", id="duplicate-anchor"),
        pytest.param('a: "\\x07"\nb: é\u2028c: 1\n', id="escapes-and-line-separator"),
        pytest.param("a: b\x85c: 1\r\nd: 2\n", id="next-line-and-crlf"),
    ],
)
def test_where_libyaml_reads_otherwise_pyyaml_decides(text):
    with_libyaml, without = both(text)
    assert with_libyaml == without


def test_the_pure_parser_reads_what_pyyaml_reads():
    document, problems = parse_yaml(MANIFEST, "sales.yaml", libyaml=False)
    assert problems == []
    assert document is not None
    assert document.data["backfills"][0]["variables"] == {
        "region": "eu",
        "ratio": 0.5,
        "on_time": True,
        "tags": ["a", "b"],
    }
    assert document.data["backfills"][0]["description"] == "Two lines,\nkept as written.\n"
    assert document.value_position(("backfills", 0, "variables", "tags", 1)) == (8, 66)


@needs_libyaml
def test_a_plain_manifest_is_read_by_libyaml_alone(monkeypatch):
    from yaml._yaml import CParser as libyaml_parser

    made = []

    def counted(text):
        made.append("libyaml")
        return libyaml_parser(text)

    def refused(text):
        raise AssertionError("the pure-Python parser was not needed")

    monkeypatch.setattr(yaml_events, "CParser", counted)
    monkeypatch.setattr(yaml, "SafeLoader", refused)
    with_libyaml = parse_yaml(MANIFEST, "sales.yaml")
    monkeypatch.undo()
    assert made == ["libyaml"]
    assert with_libyaml == parse_yaml(MANIFEST, "sales.yaml", libyaml=False)


@pytest.mark.parametrize("case", INVALID_CASES)
def test_without_libyaml_every_invalid_case_says_the_same(case, capsys, monkeypatch):
    monkeypatch.setattr(yaml_loader, "HAVE_LIBYAML", False)
    monkeypatch.chdir(INVALID / case)
    assert main(["validate", "."]) == 1
    assert capsys.readouterr().out.splitlines()[:-1] == expected_lines(case)


def test_without_libyaml_the_examples_are_valid(capsys, monkeypatch):
    monkeypatch.setattr(yaml_loader, "HAVE_LIBYAML", False)
    assert main(["validate", str(EXAMPLES)]) == 0
    assert capsys.readouterr().out == (
        "4 manifests valid (6 backfills; 201 runs if all were started, "
        "104 of them in entries with state: started)\n"
    )


def test_positions_survive_anchors_aliases_and_merges():
    text = "d: &d {interval_type: day}\nx:\n  <<: *d\n  name: a\n  list: &l [1, 2]\n  again: *l\n"
    for libyaml in (True, False):
        document, problems = parse_yaml(text, "x.yaml", libyaml=libyaml)
        assert problems == []
        assert document is not None
        # An alias's values are where its anchor wrote them; merged keys too.
        assert document.value_position(("x", "interval_type")) == (1, 23)
        assert document.value_position(("x", "again", 1)) == (5, 16)
        assert document.key_position(("x", "name")) == (4, 3)


def test_the_fixture_list_is_not_silently_empty():
    assert len(EVERY_FIXTURE) >= 30
    assert INVALID / "alias_bomb" / "sales.yaml" in EVERY_FIXTURE
