"""Finding, reading and normalising manifests: safe YAML, positions, hostile input, UTC values."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backfill_sync.errors import ManifestError, UsageError
from backfill_sync.manifests import loader
from backfill_sync.manifests.loader import (
    MAX_MANIFEST_BYTES,
    decode_manifest,
    find_manifest_files,
    load_manifests,
    load_valid_manifests,
    read_manifest,
    select_pipelines,
)
from backfill_sync.manifests.yaml_loader import MAX_YAML_DEPTH, MAX_YAML_VALUES, parse_yaml
from backfill_sync.models import DesiredBackfill, Schedule, SourceLocation, Violation

MANIFEST = """\
pipeline_uuid: sales
backfills:
  - name: reload
    start_datetime: 2024-01-01
    end_datetime: 2024-01-05T12:00:00.5+02:00
    interval_type: day
    interval_units: 1
    variables: {}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("2024-01-01", id="date"),
        pytest.param("2024-01-01T06:30:00Z", id="datetime-z"),
        pytest.param("2024-01-01 06:30:00.123456", id="space-fraction"),
        pytest.param("2024-01-01T06:30:00+02:00", id="offset"),
    ],
)
def test_timestamps_stay_strings(text):
    document, problems = parse_yaml(f"a: {text}\nb: !!timestamp {text}\n", "x.yaml")
    assert problems == []
    assert document is not None
    assert document.data == {"a": text, "b": text}


def test_positions_of_values_and_keys_are_1_based():
    document, _ = parse_yaml(MANIFEST, "sales.yaml")
    assert document is not None
    assert document.value_position(("backfills", 0)) == (3, 5)
    assert document.value_position(("backfills", 0, "interval_units")) == (7, 21)
    assert document.key_position(("backfills", 0, "interval_units")) == (7, 5)
    assert document.value_position(("pipeline_uuid",)) == (1, 16)
    # A path that does not exist points at its nearest ancestor (a missing key at its mapping).
    assert document.value_position(("backfills", 0, "state")) == (3, 5)


def test_aliases_and_merge_keys_within_limits_are_fine():
    text = """\
defaults: &defaults {interval_type: day, interval_units: 1}
common: &common {region: eu}
x:
  <<: *defaults
  interval_units: 2
  variables: *common
"""
    document, problems = parse_yaml(text, "x.yaml")
    assert problems == []
    assert document is not None
    assert document.data["x"] == {"interval_units": 2, "variables": {"region": "eu"}, "interval_type": "day"}


def test_alias_expansion_is_cut_off_before_it_is_built():
    fan = ", ".join(["*a"] * 400)
    text = f"a: &a [{', '.join(['1'] * 300)}]\nb: [{fan}]\n"
    document, problems = parse_yaml(text, "x.yaml")
    assert document is None
    assert [p.message for p in problems] == [
        f"the YAML expands to more than {MAX_YAML_VALUES} values (anchors/aliases?)"
    ]


def test_duplicate_keys_name_both_lines_and_keep_the_first_for_further_checks():
    document, problems = parse_yaml("a: 1\nb:\n  c: 1\n  c: 2\n", "x.yaml")
    assert problems == []
    assert document is not None
    assert document.data == {"a": 1, "b": {"c": 1}}
    assert list(document.parse_problems) == [
        Violation(
            "x.yaml",
            4,
            3,
            "b.c",
            "duplicate key 'c' (first set on line 3): YAML would silently keep only the last one",
        )
    ]


def test_a_bom_is_accepted():
    text, problems = decode_manifest("\ufeff".encode() + MANIFEST.encode(), "x.yaml")
    assert problems == []
    assert text is not None
    document, problems = parse_yaml(text, "x.yaml")
    assert problems == []
    assert document is not None and document.data["pipeline_uuid"] == "sales"


def test_a_bad_byte_is_located_by_line_and_character_column():
    raw = "a: 1\nname: é€".encode() + b"\xff\n"
    assert decode_manifest(raw, "x.yaml") == (
        None,
        [Violation("x.yaml", 2, 9, "", "the file is not UTF-8: byte 0xff cannot be decoded")],
    )


def test_files_over_one_mebibyte_are_refused_before_parsing(tmp_path):
    # Valid YAML, so only the size check can refuse it.
    path = write(tmp_path, "sales.yaml", MANIFEST + "#" * MAX_MANIFEST_BYTES)
    assert read_manifest(path) == (
        None,
        [
            Violation(
                str(path),
                1,
                1,
                "",
                "the file is larger than 1048576 bytes (1 MiB); a manifest is far smaller",
            )
        ],
    )


def test_a_file_of_exactly_one_mebibyte_is_read(tmp_path):
    padding = MAX_MANIFEST_BYTES - len(MANIFEST) - 2
    path = write(tmp_path, "sales.yaml", MANIFEST + "#" + "x" * padding + "\n")
    assert path.stat().st_size == MAX_MANIFEST_BYTES
    document, problems = read_manifest(path)
    assert problems == []
    assert document is not None


def test_folders_mean_their_yaml_files_not_recursive_hidden_or_other(tmp_path):
    for name in ("b.yml", "a.yaml", ".#a.yaml", "notes.txt", "c.json"):
        write(tmp_path, name, "x: 1\n")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "d.yaml", "x: 1\n")
    assert [p.name for p in find_manifest_files([str(tmp_path)])] == ["a.yaml", "b.yml"]


def test_files_are_taken_as_given_and_once(tmp_path):
    a = write(tmp_path, "a.yaml", "x: 1\n")
    other = write(tmp_path, "other.txt", "x: 1\n")
    assert find_manifest_files([str(a), str(other), str(tmp_path)]) == [a, other]


def test_every_bad_path_is_reported_at_once(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError) as caught:
        find_manifest_files([str(tmp_path / "empty"), str(tmp_path / "missing.yaml")])
    assert str(caught.value) == (
        f"{tmp_path / 'empty'}: no *.yaml or *.yml manifests in this folder; "
        f"{tmp_path / 'missing.yaml'}: no such file or folder"
    )


@pytest.mark.parametrize(
    ("include", "exclude", "kept"),
    [
        pytest.param((), (), ["daily_sales", "daily_orders", "hourly"], id="no-filter"),
        pytest.param(("daily_*",), (), ["daily_sales", "daily_orders"], id="include"),
        pytest.param(("daily_*",), ("*orders",), ["daily_sales"], id="include-exclude"),
        pytest.param((), ("daily_*", "hourly"), [], id="exclude-all"),
        pytest.param(("Daily_*",), (), [], id="case-sensitive"),
    ],
)
def test_pipeline_filters_match_the_file_stem(include, exclude, kept):
    files = [Path("m/daily_sales.yaml"), Path("m/daily_orders.yml"), Path("m/hourly.yaml")]
    assert [p.name.split(".")[0] for p in select_pipelines(files, include, exclude)] == kept


def test_valid_manifests_are_normalised(tmp_path):
    path = write(
        tmp_path,
        "sales.yaml",
        MANIFEST.replace("variables: {}", "previous_names: [old]\n    state: started\n    id: 4"),
    )
    [manifest], problems = load_manifests([str(path)], 10_000)
    assert problems == []
    assert manifest.pipeline_uuid == "sales"
    assert manifest.path == str(path)
    assert manifest.backfills == (
        DesiredBackfill(
            pipeline_uuid="sales",
            name="reload",
            schedule=Schedule(
                start=datetime(2024, 1, 1, tzinfo=UTC),
                end=datetime(2024, 1, 5, 10, 0, 0, 500_000, tzinfo=UTC),
                interval_type="day",
                interval_units=1,
            ),
            state="started",
            id=4,
            previous_names=("old",),
        ),
    )
    assert manifest.backfills[0].source == SourceLocation(str(path), 3, 5)


def test_empty_variables_and_settings_mean_absent(tmp_path):
    path = write(tmp_path, "sales.yaml", MANIFEST + "    settings: {}\n")
    [manifest], _ = load_manifests([str(path)], 10_000)
    assert (manifest.backfills[0].variables, manifest.backfills[0].settings) == (None, None)


def test_an_empty_backfill_list_is_valid_and_manages_nothing(tmp_path):
    path = write(tmp_path, "sales.yaml", "pipeline_uuid: sales\nbackfills: []\n")
    assert load_manifests([str(path)], 10_000) == ([load_valid_manifests([str(path)], 1)[0]], [])
    assert load_valid_manifests([str(path)], 1)[0].backfills == ()


def test_valid_files_still_load_next_to_invalid_ones(tmp_path):
    write(tmp_path, "sales.yaml", MANIFEST)
    write(tmp_path, "orders.yaml", "pipeline_uuid: orders\nbackfills: 3\n")
    manifests, problems = load_manifests([str(tmp_path)], 10_000)
    assert [m.pipeline_uuid for m in manifests] == ["sales"]
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'orders.yaml'}:2:12: backfills: must be a list (got 3)"
    ]


def test_load_valid_manifests_raises_with_every_violation(tmp_path):
    write(tmp_path, "sales.yaml", "pipeline_uuid: sales\n")
    write(tmp_path, "orders.yaml", "pipeline_uuid: x\nbackfills: []\n")
    with pytest.raises(ManifestError) as caught:
        load_valid_manifests([str(tmp_path)], 10_000)
    assert [(v.file, v.message) for v in caught.value.violations] == [
        (
            str(tmp_path / "orders.yaml"),
            'must equal the file name: orders.yaml must hold pipeline_uuid: orders (got "x")',
        ),
        (str(tmp_path / "sales.yaml"), "missing required key 'backfills'"),
    ]


def test_an_absent_entry_needs_only_its_name(tmp_path):
    path = write(
        tmp_path, "sales.yaml", "pipeline_uuid: sales\nbackfills:\n  - name: old-one\n    state: absent\n"
    )
    [manifest], problems = load_manifests([str(path)], 10_000)
    assert problems == []
    assert manifest.backfills == (
        DesiredBackfill(pipeline_uuid="sales", name="old-one", schedule=None, state="absent"),
    )


def test_loading_pauses_the_cycle_collector_and_restores_it(tmp_path, monkeypatch):
    write(tmp_path, "sales.yaml", MANIFEST)
    seen = []

    def spy(path):
        seen.append(gc.isenabled())
        return read_manifest(path)

    monkeypatch.setattr(loader, "read_manifest", spy)
    assert gc.isenabled()
    load_manifests([str(tmp_path)], 10_000)
    assert (seen, gc.isenabled()) == ([False], True)

    def broken(path):
        raise RuntimeError("a bug")

    monkeypatch.setattr(loader, "read_manifest", broken)
    with pytest.raises(RuntimeError):
        load_manifests([str(tmp_path)], 10_000)
    assert gc.isenabled()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: " + "[" * 101 + "]" * 101 + "\n", id="brackets"),
        pytest.param(
            "a0: &a0 [x]\n" + "".join(f"a{n}: &a{n} [*a{n - 1}]\n" for n in range(1, 120)), id="aliases"
        ),
        pytest.param(
            "m0: &m0 {k: v}\n" + "".join(f"m{n}: &m{n} {{<<: *m{n - 1}}}\n" for n in range(1, 300)),
            id="merges",
        ),
    ],
)
@pytest.mark.parametrize("libyaml", [True, False], ids=["libyaml", "pure"])
def test_nesting_is_bounded_however_it_is_written(text, libyaml):
    document, problems = parse_yaml(text, "x.yaml", libyaml=libyaml)
    assert document is None
    assert [p.message for p in problems] == [
        f"the YAML nests more than {MAX_YAML_DEPTH} levels deep; a manifest needs a handful"
    ]


def test_nesting_up_to_the_limit_is_read():
    depth = MAX_YAML_DEPTH - 1  # the top-level mapping is one level
    document, problems = parse_yaml("a: " + "[" * depth + "]" * depth + "\n", "x.yaml")
    assert problems == []
    assert document is not None
