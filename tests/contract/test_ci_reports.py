"""plan and apply in CI, end to end on the emulator: GitHub annotations on manifest lines, the job summary,
GitLab's Code Quality report, and the run budget failing a pull request's plan."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backfill_sync.client import MageClient
from backfill_sync.models import BackfillFields
from backfill_sync.render import escape_markdown
from tests.contract.servers import MageServer
from tests.contract.test_plan_apply import EXIT_CHANGES, EXIT_ERROR, EXIT_OK
from tests.contract.test_plan_apply import ws as ws  # the fixture, shared with the plan/apply scenarios
from tests.contract.workspace import Workspace, by_name, mine
from tests.test_codequality import check_gitlab_report

pytestmark = pytest.mark.parametrize("server", ["emulator"], indirect=True)


@pytest.fixture
def actions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run as a GitHub Actions step: returns the step's summary file."""
    summary = tmp_path / "step_summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return summary


def line_of(manifest: Path, name: str) -> int:
    """The 1-based line of `- name: NAME` in the manifest: where its entry starts."""
    lines = manifest.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.strip() == f"- name: {name}")


def annotations_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("::")]


def test_a_failing_apply_annotates_each_item_and_writes_the_summary(
    cli, ws: Workspace, mage: MageClient, server: MageServer, actions: Path, tmp_path: Path
):
    ws.write(ws.entry("again", extra="state: cancelled"), ws.entry("moving"))
    assert cli("apply", "--auto-approve", str(ws.folder)).code == EXIT_OK
    manifest = ws.write(
        ws.entry("again", extra="state: started"),  # a restart, blocked without --allow-restart
        ws.entry("moving", end="2024-01-09"),  # stale: changed in Mage after the plan
        ws.entry("broken", extra="state: started"),  # failed: Mage answers its write with an error
    )
    plan_file = tmp_path / "plan.json"
    assert cli("plan", "--out", str(plan_file), str(ws.folder)).code == EXIT_OK
    moving = by_name(mage, ws, "moving")
    mage.update_backfill(server.pipeline_uuid, moving.id, BackfillFields(interval_units=2))
    server.inject(method="PUT", path=r"/backfills/\d+$", kind="error_body", times=1)
    report = tmp_path / "gl-code-quality-report.json"
    earlier = actions.read_text(encoding="utf-8")  # what the steps before wrote to the summary

    applied = cli("apply", "--auto-approve", "--codequality", str(report), str(plan_file))

    assert applied.code == EXIT_ERROR
    file = re.escape(str(manifest).replace(":", "%3A").replace(",", "%2C"))
    expected = {
        "again": rf"::warning file={file},line={line_of(manifest, ws.name('again'))},col=\d+,"
        r"title=backfill-sync apply%3A blocked::.*/" + ws.name("again") + ": blocked: restarting",
        "moving": rf"::error file={file},line={line_of(manifest, ws.name('moving'))},col=\d+,"
        r"title=backfill-sync apply%3A stale::.*/" + ws.name("moving") + ": stale: backfill id",
        "broken": rf"::error file={file},line={line_of(manifest, ws.name('broken'))},col=\d+,"
        r"title=backfill-sync apply%3A failed::.*/" + ws.name("broken") + ": failed: ",
    }
    found = annotations_in(applied.err)
    assert len(found) == 3, applied.err
    for label, pattern in expected.items():
        assert any(re.match(pattern, line) for line in found), (label, found)

    summary = actions.read_text(encoding="utf-8").removeprefix(earlier)
    assert summary.startswith("### backfill-sync apply\n\n**Apply incomplete: 0 done, 0 unchanged, 1 failed")
    rows = [line for line in summary.splitlines() if line.startswith("| :")]
    assert [row.split(" | ")[0] for row in rows] == ["| :x: failed", "| :x: stale", "| :warning: blocked"]
    for row, label in zip(rows, ("broken", "moving", "again"), strict=True):
        assert escape_markdown(f"{manifest}:{line_of(manifest, ws.name(label))}:") in row, "names its line"

    issues = check_gitlab_report(report.read_text(encoding="utf-8"))
    assert sorted((i["severity"], i["location"]["lines"]["begin"]) for i in issues) == sorted(
        [
            ("minor", line_of(manifest, ws.name("again"))),
            ("major", line_of(manifest, ws.name("moving"))),
            ("major", line_of(manifest, ws.name("broken"))),
        ]
    )


def test_plan_errors_with_a_place_are_annotated_there(
    cli, ws: Workspace, mage: MageClient, server, actions, tmp_path
):
    # Two started backfills of one name: ambiguous (never-started ones would be a lost create's twins).
    for _ in range(2):
        fields = BackfillFields(
            name=ws.name("twin"),
            start_datetime=datetime(2024, 1, 1, tzinfo=UTC),
            end_datetime=datetime(2024, 1, 2, tzinfo=UTC),
            interval_type="day",
            interval_units=1,
        )
        twin = mage.create_backfill(server.pipeline_uuid, fields)
        mage.set_status(server.pipeline_uuid, twin.id, "initial")
    manifest = ws.write(ws.entry("twin"))
    unknown = ws.folder / "no_such_pipeline_ci.yaml"
    unknown.write_text("pipeline_uuid: no_such_pipeline_ci\nbackfills: []\n", encoding="utf-8")
    report = tmp_path / "report.json"

    planned = cli("plan", "--codequality", str(report), str(manifest), str(unknown))

    assert planned.code == EXIT_ERROR
    # Unknown pipelines are found before any matching: that error comes alone, on its file.
    (only,) = annotations_in(planned.err)
    assert only.startswith(f"::error file={unknown}::Mage at ")
    assert "has no pipeline 'no_such_pipeline_ci'" in only
    unknown.unlink()

    planned = cli("plan", "--codequality", str(report), str(ws.folder))
    assert planned.code == EXIT_ERROR
    (ambiguous,) = annotations_in(planned.err)
    assert ambiguous.startswith(f"::error file={manifest},line={line_of(manifest, ws.name('twin'))},col=")
    assert "matches several live backfills" in ambiguous
    assert f"Error: {manifest}:{line_of(manifest, ws.name('twin'))}:" in planned.err
    (issue,) = check_gitlab_report(report.read_text(encoding="utf-8"))
    assert issue["check_name"] == "backfill-sync-plan"
    assert issue["location"]["lines"]["begin"] == line_of(manifest, ws.name("twin"))


@pytest.mark.parametrize("detailed", [False, True], ids=["plain", "detailed-exitcode"])
def test_a_plan_over_the_run_budget_fails_and_names_the_entries(
    cli, ws: Workspace, mage, actions, tmp_path, detailed
):
    manifest = ws.write(ws.entry("big", extra="state: started"), ws.entry("small", extra="state: started"))
    plan_file = tmp_path / "plan.json"
    flags = ["--detailed-exitcode"] if detailed else []

    planned = cli("plan", *flags, "--max-total-runs", "9", "--out", str(plan_file), str(ws.folder))

    assert planned.code == EXIT_ERROR
    assert "Plan: 2 to create, 0 to update, 2 to start, " in planned.out, "the plan is still shown"
    assert "; +10 runs, 0 stopped" in planned.out
    assert planned.err.splitlines()[-1] == (
        "Error: the plan starts 10 pipeline runs, more than --max-total-runs 9, so apply would refuse it; "
        "split the change, or raise --max-total-runs (for plan and apply) if that many runs are intended"
    )
    budget = annotations_in(planned.err)
    assert [line.split(",col=")[0] for line in budget[:2]] == [
        f"::error file={manifest},line={line_of(manifest, ws.name(label))}" for label in ("big", "small")
    ]
    assert "starts 5 pipeline runs; the plan starts 10 in all, more than --max-total-runs 9" in budget[0]
    assert not plan_file.exists(), "no saved plan for apply to carry out"
    assert "backfill-sync plan" in actions.read_text(encoding="utf-8"), "the reviewer sees the plan"
    assert mine(mage, ws) == [], "plan writes nothing"


def test_a_plan_at_the_run_budget_passes(cli, ws: Workspace):
    ws.write(ws.entry("big", extra="state: started"), ws.entry("small", extra="state: started"))
    planned = cli("plan", "--detailed-exitcode", "--max-total-runs", "10", str(ws.folder))
    assert planned.code == EXIT_CHANGES, planned.err
    assert "::" not in planned.err


def test_an_error_about_no_manifest_line_is_annotated_on_the_run(cli, ws: Workspace, actions):
    ws.write(ws.entry("unasked"))
    refused = cli("apply", str(ws.folder))
    assert refused.code == EXIT_ERROR
    (only,) = annotations_in(refused.err)
    assert only.startswith("::error title=backfill-sync::no terminal to confirm on: pass --auto-approve")


def test_no_annotations_outside_github_actions(cli, ws: Workspace, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    ws.write(ws.entry("big", extra="state: started"))
    planned = cli("plan", "--max-total-runs", "1", str(ws.folder))
    assert planned.code == EXIT_ERROR
    assert annotations_in(planned.err) == []
