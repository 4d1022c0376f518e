"""The run lifecycle end to end: apply --wait, status, retry_failed_before, dates a window gains.

Against an emulator whose runs finish by themselves and, under `-m real_mage`, against real Mage (about
15 s per small backfill there: these scenarios are few and small). A flag pipeline fails on the dates a
test chooses and counts every execution of its block, so "no date ran twice" is checked on executions,
not only on statuses.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from backfill_sync.client import MageClient
from backfill_sync.datetimes import format_iso
from tests.contract.conftest import Ran, command_line
from tests.contract.lossy_proxy import Loss, LossyProxy
from tests.contract.servers import MageServer
from tests.contract.workspace import Workspace, by_name, clean_up, mine
from tests.loopback import serving

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = "10m"  # far more than the ~15 s real Mage takes; only a hang would reach it


@pytest.fixture
def owner(lively: MageServer) -> Iterator[MageClient]:
    with MageClient(lively.connection("owner")) as api:
        yield api


@pytest.fixture
def run_cli(lively, monkeypatch, capsys) -> Callable[..., Ran]:
    return command_line(lively, monkeypatch, capsys)


@pytest.fixture
def flags(tmp_path: Path, lively: MageServer, owner: MageClient) -> Iterator[Workspace]:
    """Manifests for the flag pipeline; what they made is cancelled and deleted afterwards."""
    workspace = Workspace(tmp_path, lively, lively.flag_pipeline)
    lively.fail_dates()
    try:
        yield workspace
    finally:
        lively.fail_dates()
        clean_up(owner, workspace)


def status_json(run_cli: Callable[..., Ran], folder: Path) -> dict[str, Any]:
    shown = run_cli("status", "--format", "json", str(folder))
    assert shown.code == 0, shown.err
    document = json.loads(shown.out)
    schema = json.loads((ROOT / "schemas" / "status.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
    return dict(document)


def mage_now(owner: MageClient) -> str:
    """An instant by Mage's clock, strictly after every failure seen so far (run times are whole seconds)."""
    time.sleep(1.1)
    owner.list_pipeline_uuids()
    now = owner.server_time() or datetime.now(UTC)
    return format_iso(now)


def test_apply_wait_sees_every_date_completed(run_cli, flags, lively):
    flags.write(flags.entry("ok", extra="state: started", start="2024-03-01", end="2024-03-03"))
    applied = run_cli("apply", "--auto-approve", "--wait", "--timeout", TIMEOUT, str(flags.folder))
    assert applied.code == 0, applied.out + applied.err
    assert "Every date of the started backfills completed." in applied.err
    (backfill,) = status_json(run_cli, flags.folder)["backfills"]
    assert (backfill["state"], backfill["dates"]["total"], backfill["dates"]["completed"]) == (
        "completed",
        3,
        3,
    )
    assert run_cli("status", "--detailed-exitcode", str(flags.folder)).code == 0
    ran = lively.executions()
    assert [ran[day] for day in ("2024-03-01", "2024-03-02", "2024-03-03")] == [1, 1, 1]


def test_failed_dates_are_named_retried_once_and_a_wider_window_runs_only_new_dates(
    run_cli, flags, lively, owner
):
    lively.fail_dates("2024-04-02", "2024-04-04")
    started = flags.entry("f", extra="state: started", start="2024-04-01", end="2024-04-04")
    flags.write(started)

    failed = run_cli("apply", "--auto-approve", "--wait", "--timeout", TIMEOUT, str(flags.folder))
    assert failed.code == 1, failed.out + failed.err
    assert f"{flags.pipeline_uuid}/{flags.name('f')} (id" in failed.err
    assert "2024-04-02, 2024-04-04" in failed.err
    assert "retry_failed_before" in failed.err
    document = status_json(run_cli, flags.folder)
    assert document["outcome"] == "failed"
    assert document["backfills"][0]["failed_dates"] == ["2024-04-02T00:00:00Z", "2024-04-04T00:00:00Z"]
    assert run_cli("status", "--detailed-exitcode", str(flags.folder)).code == 3

    lively.fail_dates()  # the cause is fixed
    retried = flags.entry(
        "f",
        extra=f"state: started\nretry_failed_before: '{mage_now(owner)}'",
        start="2024-04-01",
        end="2024-04-04",
    )
    flags.write(retried)
    planned = run_cli("plan", "--detailed-exitcode", str(flags.folder))
    assert planned.code == 2, planned.out + planned.err
    assert ": 2 failed dates (2024-04-02, 2024-04-04), +2 runs" in planned.out
    assert "1 to retry" in planned.out
    done = run_cli("apply", "--auto-approve", "--wait", "--timeout", TIMEOUT, str(flags.folder))
    assert done.code == 0, done.out + done.err
    again = run_cli("plan", "--detailed-exitcode", str(flags.folder))
    assert (again.code, again.out) == (0, "No changes.\n"), again.out + again.err

    wider = flags.entry(
        "f", extra=retried.split("interval_units: 1\n")[1], start="2024-04-01", end="2024-04-06"
    )
    flags.write(wider)
    planned = run_cli("plan", str(flags.folder))
    assert ": 2 new dates (2024-04-05..2024-04-06), +2 runs" in planned.out, planned.out
    extended = run_cli("apply", "--auto-approve", "--wait", "--timeout", TIMEOUT, str(flags.folder))
    assert extended.code == 0, extended.out + extended.err
    assert run_cli("plan", "--detailed-exitcode", str(flags.folder)).code == 0

    ran = lively.executions()
    assert {
        day: ran[day] for day in ("2024-04-01", "2024-04-03", "2024-04-05", "2024-04-06")
    } == dict.fromkeys(("2024-04-01", "2024-04-03", "2024-04-05", "2024-04-06"), 1)
    assert (ran["2024-04-02"], ran["2024-04-04"]) == (2, 2)  # failed once, retried once
    counts = owner.run_counts([by_name(owner, flags, "f")])
    (found,) = counts.values()
    assert (found.total, found.by_status) == (6, {"completed": 6})


def test_a_start_a_retry_and_a_run_create_whose_answers_are_lost_run_each_date_once(
    flags, lively, owner, monkeypatch, capsys
):
    """Mage does each write, and the answer never reaches apply: it must find out by reading back,
    never by sending again. Proven on executions of the flag block, on the emulator and on real Mage."""
    with serving(LossyProxy(lively.url)) as proxy:
        run_cli = command_line(dataclasses.replace(lively, url=proxy.url), monkeypatch, capsys)
        backfill = r"^/api/pipelines/[^/]+/backfills/\d+$"

        lively.fail_dates("2024-06-02")
        flags.write(flags.entry("lost", extra="state: started", start="2024-06-01", end="2024-06-03"))
        start = proxy.lose(Loss("PUT", backfill, body=r'"status": ?"initial"'))
        failed = run_cli("apply", "--auto-approve", "--wait", "--timeout", TIMEOUT, str(flags.folder))
        assert failed.code == 1, failed.out + failed.err
        assert start.lost, "the start's answer was not lost: the test proves nothing"
        assert proxy.count(start) == 1  # confirmed by reading back, never sent again
        assert "failed dates: 2024-06-02" in failed.err

        lively.fail_dates()
        extra = f"state: started\nretry_failed_before: '{mage_now(owner)}'"
        flags.write(flags.entry("lost", extra=extra, start="2024-06-01", end="2024-06-03"))
        retry = proxy.lose(Loss("PUT", r"^/api/pipeline_runs/\d+$", body="retry_blocks"))
        retried = run_cli("apply", "--auto-approve", "--wait", "--timeout", TIMEOUT, str(flags.folder))
        assert retried.code == 0, retried.out + retried.err
        assert retry.lost
        assert proxy.count(retry) == 1  # one failed date, one retry sent

        flags.write(flags.entry("lost", extra=extra, start="2024-06-01", end="2024-06-05"))
        create = proxy.lose(Loss("POST", r"^/api/pipeline_schedules/\d+/pipeline_runs$"))
        widened = run_cli("apply", "--auto-approve", "--wait", "--timeout", TIMEOUT, str(flags.folder))
        assert widened.code == 0, widened.out + widened.err
        assert create.lost
        assert proxy.count(create) == 2  # one run per new date, the lost one not sent again

        again = run_cli("plan", "--detailed-exitcode", str(flags.folder))
        assert (again.code, again.out) == (0, "No changes.\n"), again.out + again.err
    ran = lively.executions()
    days = ("2024-06-01", "2024-06-02", "2024-06-03", "2024-06-04", "2024-06-05")
    assert {day: ran[day] for day in days} == {
        "2024-06-01": 1,
        "2024-06-02": 2,  # failed once, retried once
        "2024-06-03": 1,
        "2024-06-04": 1,
        "2024-06-05": 1,
    }


# -- on the emulator only: timing and faults it can arrange exactly ------------------------------------


def test_wait_ends_at_its_timeout_and_says_so(quiet_flags):
    ws, run_cli = quiet_flags
    ws.write(ws.entry("slow", extra="state: started"))
    assert run_cli("apply", "--auto-approve", str(ws.folder)).code == 0
    waited = run_cli("wait", "--timeout", "3s", "--format", "json", str(ws.folder))
    assert waited.code == 1
    assert "timed out after 3s with 1 backfill still running" in waited.err
    document = json.loads(waited.out)
    assert (document["wait"]["result"], document["outcome"]) == ("timed_out", "running")
    assert document["wait"]["waited_seconds"] >= 3


def test_a_window_that_shrinks_cancels_the_runs_of_lost_dates_only(quiet_flags, quiet_emulator):
    ws, run_cli = quiet_flags
    ws.write(ws.entry("shrinks", extra="state: started", end="2024-01-05"))
    assert run_cli("apply", "--auto-approve", str(ws.folder)).code == 0
    ws.write(ws.entry("shrinks", extra="state: started", end="2024-01-03"))
    planned = run_cli("plan", str(ws.folder))
    assert (
        ": 2 dates no longer in the window (2024-01-04..2024-01-05), stops 2 unfinished runs" in planned.out
    )
    assert run_cli("apply", "--auto-approve", str(ws.folder)).code == 0
    with MageClient(quiet_emulator.connection("owner")) as api:
        backfill = by_name(api, ws, "shrinks")
        runs = {
            run.execution_date.day: run.status
            for run in api.runs.list_runs(backfill.id)
            if run.execution_date
        }
        # Whether the scheduler picked the others up yet (initial or running) is its own business.
        unfinished = {
            day: "unfinished" if status in ("initial", "running") else status for day, status in runs.items()
        }
        assert unfinished == {
            1: "unfinished",
            2: "unfinished",
            3: "unfinished",
            4: "cancelled",
            5: "cancelled",
        }
        quiet_emulator.complete_runs(backfill.id)
        # Mage never calls it finished: it stays initial or running for good (§6.10).
        assert fetch_status(api, backfill.id) in ("initial", "running")
    document = status_json(run_cli, ws.folder)
    assert (document["backfills"][0]["state"], document["backfills"][0]["dates"]["completed"]) == (
        "completed",
        3,
    )
    assert run_cli("plan", "--detailed-exitcode", str(ws.folder)).code == 0


def test_a_date_a_narrowing_cancelled_runs_once_when_the_window_takes_it_back(
    quiet_flags, quiet_emulator, tmp_path
):
    ws, run_cli = quiet_flags
    ws.write(ws.entry("rewidened", extra="state: started", end="2024-01-05"))
    assert run_cli("apply", "--auto-approve", str(ws.folder)).code == 0
    ws.write(ws.entry("rewidened", extra="state: started", end="2024-01-03"))
    assert run_cli("apply", "--auto-approve", str(ws.folder)).code == 0  # cancels 01-04 and 01-05
    ws.write(ws.entry("rewidened", extra="state: started", end="2024-01-04"))
    saved = tmp_path / "plan.json"
    planned = run_cli("plan", "--out", str(saved), str(ws.folder))
    (run_line,) = [line for line in planned.out.splitlines() if line.startswith("  + run ")]
    assert "2024-01-04" in run_line and "2024-01-05" not in run_line, planned.out
    assert "1 to run new dates" in planned.out
    first = run_cli("apply", "--auto-approve", str(saved))
    assert first.code == 0, first.out + first.err
    again = run_cli("apply", "--auto-approve", str(saved))  # the same reviewed plan, applied twice
    assert again.code == 0, again.out + again.err
    with MageClient(quiet_emulator.connection("owner")) as api:
        backfill = by_name(api, ws, "rewidened")
        jan_4 = [
            status
            for _, status in sorted(
                (run.id, run.status)
                for run in api.runs.list_runs(backfill.id)
                if run.execution_date and run.execution_date.day == 4
            )
        ]
        # The run the narrowing cancelled, then one new run: the second apply added none.
        assert (len(jan_4), jan_4[0]) == (2, "cancelled"), jan_4
        quiet_emulator.complete_runs(backfill.id)
    assert run_cli("plan", "--detailed-exitcode", str(ws.folder)).code == 0
    document = status_json(run_cli, ws.folder)
    assert (document["backfills"][0]["state"], document["backfills"][0]["dates"]["completed"]) == (
        "completed",
        4,
    )


def test_an_unanswered_run_create_is_found_not_sent_again(tmp_path, emulator_server, monkeypatch, capsys):
    ws = Workspace(tmp_path, emulator_server, emulator_server.flag_pipeline)
    run_cli = command_line(emulator_server, monkeypatch, capsys)
    ws.write(ws.entry("lost-answer", extra="state: started", start="2024-05-01", end="2024-05-02"))
    assert run_cli("apply", "--auto-approve", "--wait", str(ws.folder)).code == 0
    ws.write(ws.entry("lost-answer", extra="state: started", start="2024-05-01", end="2024-05-03"))
    emulator_server.inject(
        method="POST", path=r"^/api/pipeline_schedules/\d+/pipeline_runs$", kind="drop_after", times=1
    )
    try:
        applied = run_cli("apply", "--auto-approve", "--wait", str(ws.folder))
        assert applied.code == 0, applied.out + applied.err
        with MageClient(emulator_server.connection("owner")) as api:
            backfill = by_name(api, ws, "lost-answer")
            dates = [run.execution_date for run in api.runs.list_runs(backfill.id)]
        assert len(dates) == len(set(dates)) == 3
        assert emulator_server.executions()["2024-05-03"] == 1
    finally:
        emulator_server.clear_faults()
        with MageClient(emulator_server.connection("owner")) as api:
            for live in mine(api, ws):
                api.delete_backfill(ws.pipeline_uuid, live.id)


def fetch_status(api: MageClient, backfill_id: int) -> str | None:
    found = api.get_backfill(backfill_id)
    assert found is not None
    return found.status


def test_under_github_actions_wait_annotates_failed_dates_and_writes_the_summary(
    tmp_path, lively_emulator, monkeypatch, capsys
):
    ws = Workspace(tmp_path, lively_emulator, lively_emulator.flag_pipeline)
    run_cli = command_line(lively_emulator, monkeypatch, capsys)
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    lively_emulator.fail_dates("2024-06-02")
    try:
        path = ws.write(ws.entry("annotated", extra="state: started", start="2024-06-01", end="2024-06-03"))
        waited = run_cli("apply", "--auto-approve", "--wait", str(ws.folder))
        assert waited.code == 1
        # The entry's `- name:` is on line 3 of the manifest Workspace writes.
        assert f"::error file={path},line=3::" in waited.err
        assert "failed dates: 2024-06-02" in waited.err
        text = summary.read_text(encoding="utf-8")
        # apply's own result comes first, then the wait's status table.
        applied, _, waited_part = text.partition("<!-- backfill-sync:status -->\n")
        assert applied.startswith("### backfill-sync apply\n") and "Apply complete" in applied
        assert waited_part.startswith("### backfill-sync wait")
        assert "| failed |" in waited_part
    finally:
        lively_emulator.fail_dates()
        with MageClient(lively_emulator.connection("owner")) as api:
            for live in mine(api, ws):
                api.delete_backfill(ws.pipeline_uuid, live.id)
