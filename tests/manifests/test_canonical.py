"""The canonical manifest form: key order, datetimes, quoting, comments, idempotence."""

from __future__ import annotations

import textwrap

import pytest

from backfill_sync.manifests.canonical import (
    MODELINE,
    FormatError,
    canonical_datetime,
    check_same_meaning,
    format_manifest,
    render_manifest,
    unformattable,
)
from backfill_sync.manifests.schema import check_document
from backfill_sync.manifests.yaml_loader import parse_yaml


def fmt(text: str) -> str:
    """Format a valid manifest; indented triple-quoted text is dedented first."""
    text = textwrap.dedent(text)
    document, problems = parse_yaml(text, "p.yaml")
    assert document is not None, problems
    assert check_document(document, 10_000) == [], "test input must be a valid manifest"
    return format_manifest(text, document.data)


ENTRY = """\
    start_datetime: '2024-01-01T00:00:00Z'
    end_datetime: '2024-01-02T00:00:00Z'
    interval_type: day
    interval_units: 1
"""


def with_variables(lines: str) -> str:
    """A canonical one-backfill manifest whose variables mapping holds `lines` (6-space indented)."""
    return "pipeline_uuid: p\nbackfills:\n  - name: a\n" + ENTRY + "    variables:\n" + lines


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        pytest.param("2024-01-01", "2024-01-01T00:00:00Z", id="date-is-midnight-utc"),
        pytest.param("2024-01-01 06:30:00", "2024-01-01T06:30:00Z", id="space-naive-is-utc"),
        pytest.param("2024-01-01T06:30:00+02:00", "2024-01-01T04:30:00Z", id="offset-converted"),
        pytest.param("2024-01-01T23:30:00-05:00", "2024-01-02T04:30:00Z", id="offset-crosses-midnight"),
        pytest.param("2024-01-01T00:00:00.25Z", "2024-01-01T00:00:00.250000Z", id="fraction-kept"),
        pytest.param("2024-01-01T00:00:00.000000Z", "2024-01-01T00:00:00Z", id="zero-fraction-dropped"),
        pytest.param("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", id="already-canonical"),
    ],
)
def test_datetimes_become_quoted_utc(written: str, canonical: str) -> None:
    assert canonical_datetime(written) == canonical
    out = fmt(f"""\
        pipeline_uuid: p
        backfills:
          - name: a
            start_datetime: {written}
            end_datetime: '2030-01-01'
            interval_type: year
            interval_units: 1
        """)
    assert f"    start_datetime: '{canonical}'\n" in out
    assert "    end_datetime: '2030-01-01T00:00:00Z'\n" in out


def test_keys_are_put_in_canonical_order() -> None:
    out = fmt("""\
        backfills:
          - state: started
            interval_units: 1
            variables: {a: 1}
            end_datetime: '2024-01-02T00:00:00Z'
            interval_type: day
            id: 7
            start_datetime: '2024-01-01T00:00:00Z'
            previous_names: [old]
            settings: {b: 2}
            description: why
            name: a
        pipeline_uuid: p
        """)
    assert out == textwrap.dedent("""\
        pipeline_uuid: p
        backfills:
          - name: a
            description: why
            id: 7
            previous_names: [old]
            start_datetime: '2024-01-01T00:00:00Z'
            end_datetime: '2024-01-02T00:00:00Z'
            interval_type: day
            interval_units: 1
            variables: {a: 1}
            settings: {b: 2}
            state: started
        """)


def test_comments_move_with_the_key_below_them() -> None:
    out = fmt("""\
        # yaml-language-server: $schema=../schemas/backfill-manifest.schema.json
        # about this file
        pipeline_uuid: p  # the pipeline
        backfills:
        # the first one
        - name: a
          # why the window
          end_datetime: '2024-01-02T00:00:00Z'
          # the start
          start_datetime: '2024-01-01T00:00:00Z'   # inclusive
          interval_type: day
          interval_units: 1
          variables:
            x: 1   # ex

        # the second one
        - name: b
          start_datetime: '2024-01-01T00:00:00Z'
          end_datetime: '2024-01-02T00:00:00Z'
          interval_type: day
          interval_units: 1
        # the end
        """)
    assert out == textwrap.dedent("""\
        # yaml-language-server: $schema=../schemas/backfill-manifest.schema.json
        # about this file
        pipeline_uuid: p  # the pipeline
        backfills:
          # the first one
          - name: a
            # the start
            start_datetime: '2024-01-01T00:00:00Z' # inclusive
            # why the window
            end_datetime: '2024-01-02T00:00:00Z'
            interval_type: day
            interval_units: 1
            variables:
              x: 1 # ex

          # the second one
          - name: b
            start_datetime: '2024-01-01T00:00:00Z'
            end_datetime: '2024-01-02T00:00:00Z'
            interval_type: day
            interval_units: 1
        # the end
        """)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        pytest.param('"yes"', "'yes'", id="yaml11-bool-stays-quoted"),
        pytest.param("'on'", "'on'", id="on-stays-quoted"),
        pytest.param('"0o17"', "'0o17'", id="octal-looking"),
        pytest.param('"1_000"', "'1_000'", id="underscore-int-looking"),
        pytest.param('"2024-01-01"', "'2024-01-01'", id="date-looking-variable"),
        pytest.param('"null"', "'null'", id="null-looking"),
        pytest.param('"eu"', "eu", id="needless-quotes-dropped"),
        pytest.param("'a: b'", "'a: b'", id="colon-space-needs-quotes"),
        pytest.param("~", "null", id="null-spelled-out"),
        pytest.param("true", "true", id="bool"),
    ],
)
def test_quotes_only_where_yaml_needs_them(written: str, expected: str) -> None:
    out = fmt(with_variables(f"      v: {written}\n"))
    assert f"      v: {expected}\n" in out


def test_ambiguous_keys_are_quoted() -> None:
    out = fmt(with_variables('      "on": 1\n      "plain": 2\n'))
    assert "      'on': 1\n      plain: 2\n" in out


def test_indentation_and_trailing_newline_are_normalised() -> None:
    out = fmt("""\
        pipeline_uuid: p
        backfills:
            -   name: a
                start_datetime: '2024-01-01T00:00:00Z'
                end_datetime: '2024-01-02T00:00:00Z'
                interval_type: day
                interval_units: 1
                variables:
                        deep:
                                - 1
                                - 2



        """)
    assert out.endswith("      deep:\n        - 1\n        - 2\n")
    assert "  - name: a\n    start_datetime:" in out


def test_long_and_multiline_strings_stay_as_they_are() -> None:
    long = "word " * 40
    text = with_variables("      sql: |\n        select 1\n        # not a comment\n")
    out = fmt(text.replace("  - name: a\n", f"  - name: a\n    description: {long.strip()}\n"))
    assert f"    description: {long.strip()}\n" in out
    assert "      sql: |\n        select 1\n        # not a comment\n" in out


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            "backfills:\n- interval_units: 1\n  name: a  # n\n  start_datetime: 2024-01-01\n"
            "  end_datetime: 2024-01-02 # e\n  interval_type: day\n  # tail\npipeline_uuid: p\n",
            id="messy",
        ),
        pytest.param("pipeline_uuid: p\nbackfills: []\n", id="empty-list"),
        pytest.param(f"{MODELINE}\npipeline_uuid: p\nbackfills:\n  - name: a\n{ENTRY}", id="canonical"),
    ],
)
def test_formatting_is_idempotent(text: str) -> None:
    once = fmt(text)
    assert fmt(once) == once


def test_canonical_text_is_left_alone() -> None:
    text = f"{MODELINE}\npipeline_uuid: p\nbackfills:\n  - name: a\n{ENTRY}"
    assert fmt(text) == text


def test_a_byte_order_mark_is_dropped() -> None:
    text = "\ufeffpipeline_uuid: p\nbackfills: []\n"
    assert fmt(text) == "pipeline_uuid: p\nbackfills: []\n"


def test_anchors_and_aliases_are_refused() -> None:
    text = "pipeline_uuid: p\nbackfills:\n  - &one\n    name: a\n"
    [violation] = unformattable(text, "p.yaml")
    assert (violation.line, violation.col) == (3, 5)
    assert "anchors or aliases" in violation.message
    assert unformattable("pipeline_uuid: p\nbackfills: []\n", "p.yaml") == []


def test_a_change_of_meaning_is_caught() -> None:
    with pytest.raises(FormatError, match="means something else"):
        check_same_meaning({"pipeline_uuid": "p", "backfills": []}, "pipeline_uuid: q\nbackfills: []\n")
    check_same_meaning(
        {"pipeline_uuid": "p", "backfills": [{"start_datetime": "2024-01-01"}]},
        "pipeline_uuid: p\nbackfills:\n  - start_datetime: '2024-01-01T00:00:00Z'\n",
    )


def test_rendered_manifest_has_modeline_blank_lines_and_is_canonical() -> None:
    entries = [
        {
            "name": "a",
            "start_datetime": "2024-01-01T00:00:00Z",
            "end_datetime": "2024-01-02T00:00:00Z",
            "interval_type": "day",
            "interval_units": 1,
            "variables": {"flag": "yes"},
            "state": "started",
        },
        {
            "name": "b",
            "id": 3,
            "start_datetime": "2024-01-01T00:00:00Z",
            "end_datetime": "2024-01-02T00:00:00Z",
            "interval_type": "day",
            "interval_units": 1,
        },
    ]
    text = render_manifest("p", entries, schema="../schemas/backfill-manifest.schema.json")
    assert text == (
        "# yaml-language-server: $schema=../schemas/backfill-manifest.schema.json\n"
        "pipeline_uuid: p\nbackfills:\n"
        "  - name: a\n" + ENTRY + "    variables:\n      flag: 'yes'\n    state: started\n\n"
        "  - name: b\n    id: 3\n" + ENTRY
    )
    assert fmt(text) == text


def test_comments_after_a_block_scalar_stay_with_the_key_below_them() -> None:
    out = fmt("""\
        pipeline_uuid: p
        backfills:
        - name: a
          start_datetime: '2024-01-01T00:00:00Z'
          end_datetime: '2024-01-02T00:00:00Z'
          interval_type: day
          interval_units: 1
          description: |
            literal
          # about state
          state: started
        - name: b
          start_datetime: '2024-01-01T00:00:00Z'
          end_datetime: '2024-01-02T00:00:00Z'
          interval_type: day
          interval_units: 1
          description: >
            folded
        # the end
        """)
    assert out == textwrap.dedent("""\
        pipeline_uuid: p
        backfills:
          - name: a
            description: |
              literal
            start_datetime: '2024-01-01T00:00:00Z'
            end_datetime: '2024-01-02T00:00:00Z'
            interval_type: day
            interval_units: 1
            # about state
            state: started
          - name: b
            description: >
              folded
            start_datetime: '2024-01-01T00:00:00Z'
            end_datetime: '2024-01-02T00:00:00Z'
            interval_type: day
            interval_units: 1
        # the end
        """)
    assert fmt(out) == out


def test_comments_inside_nested_mappings_follow_their_keys() -> None:
    out = fmt("""\
        pipeline_uuid: p
        backfills:
        - name: a
          start_datetime: '2024-01-01T00:00:00Z'
          end_datetime: '2024-01-02T00:00:00Z'
          interval_type: day
          interval_units: 1
          settings:
            # inside settings
            x: 1
            # between
            y:
              # deeper
              z: 1
        """)
    assert out.endswith(
        "    settings:\n      # inside settings\n      x: 1\n      # between\n"
        "      y:\n        # deeper\n        z: 1\n"
    )
    assert fmt(out) == out


def test_crlf_line_endings_become_lf() -> None:
    canonical = "pipeline_uuid: p\nbackfills:\n  - name: a\n" + ENTRY
    assert fmt(canonical.replace("\n", "\r\n")) == canonical


def test_blank_line_separates_backfills_that_end_in_a_mapping() -> None:
    entries = [
        {"name": "a", **yaml_entry(), "variables": {"a": 1}},
        {"name": "b", **yaml_entry(), "settings": {"s": {"deep": [1, {"x": 2}]}}},
        {"name": "c", **yaml_entry()},
    ]
    text = render_manifest("p", entries)
    assert "    variables:\n      a: 1\n\n  - name: b\n" in text
    assert "        deep:\n          - 1\n          - x: 2\n\n  - name: c\n" in text
    assert "\n\n\n" not in text and ":\n\n" not in text
    assert fmt(text) == text


def test_a_blank_line_after_a_nested_key_is_dropped() -> None:
    canonical = with_variables("      a: 1\n")
    assert fmt(canonical.replace("variables:\n", "variables:\n\n")) == canonical
    assert fmt(canonical.replace("variables:\n", "variables:\n\n  # why\n")) == with_variables(
        "      # why\n      a: 1\n"
    )


def yaml_entry() -> dict[str, object]:
    return {
        "start_datetime": "2024-01-01T00:00:00Z",
        "end_datetime": "2024-01-02T00:00:00Z",
        "interval_type": "day",
        "interval_units": 1,
    }
