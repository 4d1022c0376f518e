"""`backfill-sync validate` end to end: every invalid case says exactly what is wrong, and where."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from backfill_sync.cli import main
from backfill_sync.cli.report import github_annotation
from backfill_sync.models import Violation

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "backfills"
INVALID = Path(__file__).resolve().parent / "data" / "invalid"
INVALID_CASES = sorted(path.name for path in INVALID.iterdir() if path.is_dir())


def expected_lines(case: str) -> list[str]:
    return (INVALID / case / "expected.txt").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("case", INVALID_CASES)
def test_each_invalid_case_reports_exactly_its_expected_problems(case, capsys, monkeypatch):
    monkeypatch.chdir(INVALID / case)
    assert main(["validate", "."]) == 1
    lines = capsys.readouterr().out.splitlines()
    expected = expected_lines(case)
    assert expected, "every case states at least one expected problem"
    assert lines[:-1] == expected
    files = len({line.split(":", 1)[0] for line in expected})
    problems = f"{len(expected)} problem{'s' if len(expected) != 1 else ''}"
    assert lines[-1] == f"{problems} in {files} file{'s' if files != 1 else ''}"


@pytest.mark.parametrize("case", INVALID_CASES)
def test_json_output_carries_the_same_problems(case, capsys, monkeypatch):
    monkeypatch.chdir(INVALID / case)
    assert main(["validate", ".", "--format", "json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert all(set(row) == {"file", "line", "col", "path", "message"} for row in rows)
    assert [str(Violation(**row)) for row in rows] == expected_lines(case)


def valid_summary(manifests: int, backfills: int, runs: int, started: int) -> str:
    plural = {1: ""}
    return (
        f"{manifests} manifest{plural.get(manifests, 's')} valid "
        f"({backfills} backfill{plural.get(backfills, 's')}; {runs} run{plural.get(runs, 's')} if all were "
        f"started, {started} of them in entries with state: started)"
    )


def test_the_examples_are_valid_and_summarised(capsys):
    assert main(["validate", str(EXAMPLES)]) == 0
    assert (
        capsys.readouterr().out == "4 manifests valid (6 backfills; 201 runs if all were started, "
        "104 of them in entries with state: started)\n"
    )


def test_json_output_is_an_empty_list_when_valid(capsys):
    assert main(["validate", str(EXAMPLES), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_every_example_has_the_schema_modeline_and_stays_small():
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert len(files) >= 4
    for path in files:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../../schemas/backfill-manifest.schema.json"


def test_the_started_example_is_small_enough_for_the_demo(capsys):
    assert main(["validate", str(EXAMPLES / "inventory_snapshot.yaml"), "--max-runs", "99"]) == 0
    assert "state: started" in (EXAMPLES / "inventory_snapshot.yaml").read_text(encoding="utf-8")
    assert capsys.readouterr().out == valid_summary(1, 1, 13, 13) + "\n"


def test_max_runs_is_enforced_per_backfill(capsys):
    assert main(["validate", str(EXAMPLES), "--max-runs", "90"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{EXAMPLES / 'daily_sales.yaml'}:5:5: backfills[0]: implies 91 pipeline runs, "
        "more than --max-runs 90: narrow the window, use a longer interval, or raise --max-runs",
        "1 problem in 1 file",
    ]


def test_max_runs_equal_to_the_count_is_allowed(capsys):
    assert main(["validate", str(EXAMPLES), "--max-runs", "91"]) == 0


def test_max_runs_below_one_is_a_usage_error(capsys):
    assert main(["validate", str(EXAMPLES), "--max-runs", "0"]) == 1
    assert "--max-runs" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "summary"),
    [
        pytest.param(
            ["--pipeline", "daily_*"],
            valid_summary(1, 2, 122, 91),
            id="include",
        ),
        pytest.param(
            ["--exclude", "daily_*", "--exclude", "monthly_*"],
            valid_summary(2, 2, 61, 13),
            id="exclude",
        ),
        pytest.param(
            ["--pipeline", "*_*", "--exclude", "hourly_*"],
            valid_summary(3, 5, 153, 104),
            id="both",
        ),
    ],
)
def test_pipeline_filters_select_by_file_stem(options, summary, capsys):
    assert main(["validate", str(EXAMPLES), *options]) == 0
    assert capsys.readouterr().out == f"{summary}\n"


def test_an_excluded_invalid_file_is_not_read(tmp_path, capsys):
    shutil.copytree(EXAMPLES, tmp_path / "backfills")
    (tmp_path / "backfills" / "broken.yaml").write_bytes(b"\xff\xfe not yaml")
    assert main(["validate", str(tmp_path / "backfills"), "--exclude", "broken"]) == 0
    assert main(["validate", str(tmp_path / "backfills")]) == 1
    assert "broken.yaml:1:1: the file is not UTF-8" in capsys.readouterr().out


def test_filters_that_leave_nothing_are_an_error(capsys):
    assert main(["validate", str(EXAMPLES), "--pipeline", "nope*"]) == 1
    assert capsys.readouterr().err == "Error: no manifests left after the --pipeline/--exclude filters\n"


def test_an_empty_folder_is_an_error_not_valid(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a manifest", encoding="utf-8")
    assert main(["validate", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"Error: {tmp_path}: no *.yaml or *.yml manifests in this folder\n"


def test_every_missing_path_is_named(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "a.yaml"), str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'a.yaml'}: no such file or folder" in err
    assert f"{tmp_path / 'b'}: no such file or folder" in err


def test_default_path_is_backfills_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 1
    assert "backfills: no such folder (the default when no PATH is given)" in capsys.readouterr().err
    shutil.copytree(EXAMPLES, tmp_path / "backfills")
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith("4 manifests valid")


def test_a_file_named_twice_is_validated_once(capsys):
    assert main(["validate", str(EXAMPLES), str(EXAMPLES / "daily_sales.yaml")]) == 0
    assert capsys.readouterr().out.startswith("4 manifests valid")


def test_github_actions_gets_annotations_in_text_mode(monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.chdir(INVALID / "interval_type")
    assert main(["validate", "."]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "::error file=sales.yaml,line=6,col=20::backfills[0].interval_type: must be one of second, minute, "
        'hour, day, week, month, year, custom, in lower case (got "Hour")'
    )
    assert out[2:4] == expected_lines("interval_type")


def test_github_actions_annotations_go_to_stderr_in_json_mode(monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.chdir(INVALID / "block_uuid")
    assert main(["validate", ".", "--format", "json"]) == 1
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 1
    assert captured.err.startswith("::error file=sales.yaml,line=8,col=17::backfills[0].block_uuid: ")


def test_no_annotations_outside_github_actions(monkeypatch, capsys):
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    monkeypatch.chdir(INVALID / "block_uuid")
    assert main(["validate", "."]) == 1
    assert "::error" not in capsys.readouterr().out


@pytest.mark.parametrize(
    ("violation", "annotation"),
    [
        pytest.param(
            Violation("a.yaml", 3, 5, "backfills[0].name", "50% done\r\nnext"),
            "::error file=a.yaml,line=3,col=5::backfills[0].name: 50%25 done%0D%0Anext",
            id="message-escapes",
        ),
        pytest.param(
            Violation("dir,x/b:c%.yaml", 1, 1, "", "bad"),
            "::error file=dir%2Cx/b%3Ac%25.yaml,line=1,col=1::bad",
            id="property-escapes",
        ),
    ],
)
def test_github_annotations_are_escaped(violation, annotation):
    assert github_annotation(violation) == annotation


def test_help_teaches_the_format_with_an_example(capsys):
    assert main(["validate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "pipeline_uuid: daily_sales" in out
    assert "file:line:col: field.path: message" in out
    assert "--max-runs" in out and "--format" in out and "--pipeline" in out


def test_end_to_end_through_python_dash_m():
    ok = subprocess.run(
        [sys.executable, "-m", "backfill_sync", "validate", str(EXAMPLES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (ok.returncode, ok.stdout, ok.stderr) == (
        0,
        valid_summary(4, 6, 201, 104) + "\n",
        "",
    )
    bad = subprocess.run(
        [sys.executable, "-m", "backfill_sync", "validate", "."],
        cwd=INVALID / "alias_bomb",
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[:-1] == expected_lines("alias_bomb")
    assert "Traceback" not in bad.stderr


def test_a_name_only_absent_entry_is_valid_and_implies_no_runs(tmp_path, capsys):
    path = tmp_path / "sales.yaml"
    path.write_text(
        "pipeline_uuid: sales\nbackfills:\n  - name: old-one\n    state: absent\n", encoding="utf-8"
    )
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == valid_summary(1, 1, 0, 0) + "\n"


def test_the_run_count_says_what_it_counts(tmp_path, capsys):
    # 3 runs started, 2 that only starting them would create, and none for an absent entry.
    path = tmp_path / "sales.yaml"
    path.write_text(
        "pipeline_uuid: sales\nbackfills:\n"
        "  - {name: a, start_datetime: 2024-01-01, end_datetime: 2024-01-03, interval_type: day,"
        " interval_units: 1, state: started}\n"
        "  - {name: b, start_datetime: 2024-01-01, end_datetime: 2024-01-02, interval_type: day,"
        " interval_units: 1}\n"
        "  - {name: c, start_datetime: 2024-01-01, end_datetime: 2024-01-09, interval_type: day,"
        " interval_units: 1, state: absent}\n",
        encoding="utf-8",
    )
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == (valid_summary(1, 3, 5, 3) + "\n")
