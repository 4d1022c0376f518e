"""GitLab Code Quality reports: `validate --format codequality` and `--codequality FILE` follow GitLab's
documented format (tests/data/gitlab/codequality-report.schema.json) and point at the problems' lines."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from backfill_sync.cli import main
from backfill_sync.cli.report import github_annotation
from backfill_sync.codequality import render_codequality, repository_path
from backfill_sync.models import Violation
from backfill_sync.problems import Problem, violation_problems
from tests.test_validate_cli import EXAMPLES, INVALID, INVALID_CASES, expected_lines

GITLAB_SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "gitlab" / "codequality-report.schema.json").read_text(encoding="utf-8")
)


def check_gitlab_report(text: str) -> list[dict[str, Any]]:
    """Everything GitLab documents about a report, or an AssertionError/ValidationError saying what is off."""
    assert not text.startswith("\ufeff"), "GitLab's parser refuses a byte order mark"
    report = json.loads(text)
    jsonschema.validate(report, GITLAB_SCHEMA)
    fingerprints = [issue["fingerprint"] for issue in report]
    assert len(set(fingerprints)) == len(fingerprints), "equal fingerprints show as one finding"
    return list(report)


@pytest.mark.parametrize("case", INVALID_CASES)
def test_validate_prints_a_gitlab_report_with_each_problem_on_its_line(case, capsys, monkeypatch):
    monkeypatch.chdir(INVALID / case)
    assert main(["validate", "--format", "codequality", "."]) == 1
    report = check_gitlab_report(capsys.readouterr().out)
    expected = [line.split(":", 3) for line in expected_lines(case)]
    assert [(i["location"]["path"], i["location"]["lines"]["begin"]) for i in report] == [
        (file, int(line)) for file, line, _, _ in expected
    ]
    assert [i["description"] for i in report] == [message.strip() for *_, message in expected]
    assert {(i["check_name"], i["severity"]) for i in report} == {("backfill-sync-validate", "major")}


def test_a_valid_folder_gives_an_empty_report(capsys):
    assert main(["validate", "--format", "codequality", str(EXAMPLES)]) == 0
    assert check_gitlab_report(capsys.readouterr().out) == []


def test_the_codequality_option_writes_the_report_and_keeps_the_text(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(INVALID / "block_uuid")
    report = tmp_path / "gl-code-quality-report.json"
    assert main(["validate", "--codequality", str(report), "."]) == 1
    assert capsys.readouterr().out.splitlines()[:-1] == expected_lines("block_uuid")
    (issue,) = check_gitlab_report(report.read_text(encoding="utf-8"))
    assert issue["location"] == {"path": "sales.yaml", "lines": {"begin": 8}}


def test_fingerprints_stay_when_lines_move_and_differ_between_problems(tmp_path):
    def fingerprints(*problems: Problem) -> list[str]:
        return [issue["fingerprint"] for issue in json.loads(render_codequality(problems, root=tmp_path))]

    first = Problem("validate", "backfills[0].name: too long", "b/x.yaml", 4, 5, subject="backfills[0].name")
    moved = Problem("validate", "backfills[0].name: too long", "b/x.yaml", 9, 5, subject="backfills[0].name")
    other = Problem("validate", "backfills[1].name: too long", "b/x.yaml", 9, 5, subject="backfills[1].name")
    assert fingerprints(first) == fingerprints(moved)
    assert len(set(fingerprints(first, other))) == 2


def test_only_problems_in_a_file_are_reported_and_paths_are_relative(tmp_path):
    problems = [
        Problem("plan", "Mage is unreachable"),
        Problem("plan", "no pipeline 'x'", str(tmp_path / "backfills" / "x.yaml")),
        Problem("apply", "blocked", "./backfills/y.yaml", 7, 5, "warning"),
    ]
    report = check_gitlab_report(render_codequality(problems, root=tmp_path))
    assert [(i["location"], i["severity"]) for i in report] == [
        ({"path": "backfills/x.yaml", "lines": {"begin": 1}}, "major"),
        ({"path": "backfills/y.yaml", "lines": {"begin": 7}}, "minor"),
    ]
    assert repository_path("/elsewhere/z.yaml", tmp_path).startswith("..")


@pytest.mark.parametrize(
    ("breakage", "why"),
    [
        pytest.param(lambda issue: issue.pop("fingerprint"), "required", id="no-fingerprint"),
        pytest.param(lambda issue: issue.update(severity="error"), "is not one of", id="unknown-severity"),
        pytest.param(lambda issue: issue["location"].update(path="/abs.yaml"), "should not", id="abs-path"),
        pytest.param(lambda issue: issue["location"].pop("lines"), "lines", id="no-line"),
    ],
)
def test_the_schema_catches_what_gitlab_would_refuse(breakage, why):
    good = json.loads(render_codequality([Problem("validate", "bad", "a.yaml", 2)], root=Path.cwd()))
    jsonschema.validate(good, GITLAB_SCHEMA)
    broken = copy.deepcopy(good)
    breakage(broken[0])
    with pytest.raises(jsonschema.ValidationError, match=why):
        jsonschema.validate(broken, GITLAB_SCHEMA)


def test_a_violation_and_its_problem_annotate_alike():
    violation = Violation("a.yaml", 3, 5, "backfills[0].name", "bad")
    assert github_annotation(violation) == github_annotation(violation_problems([violation])[0])
