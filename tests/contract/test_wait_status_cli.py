"""`status` and `wait` end to end on the emulator: what they say about entries that were never applied,
about dates cancelled one by one, and about a backfill declared cancelled after it completed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from backfill_sync.client import MageClient
from tests.contract.conftest import Ran, command_line
from tests.contract.servers import MageServer
from tests.contract.workspace import Workspace, mine

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "status.schema.json").read_text(encoding="utf-8"))


def json_of(ran: Ran) -> dict[str, Any]:
    document = json.loads(ran.out)
    jsonschema.validate(document, SCHEMA)
    return dict(document)


# -- 1. declared started, yet Mage lacks it or never started it ------------------------------------------


def test_a_started_entry_mage_lacks_is_not_applied_and_wait_fails_at_once(quiet_flags):
    ws, run_cli = quiet_flags
    ws.write(ws.entry("never-applied", extra="state: started"))

    waited = run_cli("wait", "--timeout", "10m", "--format", "json", str(ws.folder))
    assert waited.code == 1, waited.err
    document = json_of(waited)
    assert (document["wait"]["result"], document["wait"]["waited_seconds"]) == ("not_applied", 0)
    assert "Every date" not in waited.err
    assert f"{ws.pipeline_uuid}/{ws.name('never-applied')} (not in Mage): Mage does not have it" in waited.err
    assert "Run `backfill-sync apply`" in waited.err

    status = run_cli("status", "--format", "json", "--detailed-exitcode", str(ws.folder))
    assert status.code == 2
    document = json_of(status)
    assert document["outcome"] == "not_applied"
    (entry,) = document["backfills"]
    assert (entry["id"], entry["state"], document["summary"]["not_applied"]) == (None, "not_applied", 1)
    text = run_cli("status", str(ws.folder))
    assert text.out.startswith(f"not applied {ws.pipeline_uuid}/{ws.name('never-applied')} (not in Mage)")


def test_a_started_entry_mage_never_started_is_not_applied(quiet_flags):
    ws, run_cli = quiet_flags
    ws.write(ws.entry("made-not-started"))
    assert run_cli("apply", "--auto-approve", str(ws.folder)).code == 0
    ws.write(ws.entry("made-not-started", extra="state: started"))

    waited = run_cli("wait", "--timeout", "10m", str(ws.folder))
    assert waited.code == 1, waited.err
    assert "not applied" in waited.out and "never started in Mage" in waited.err
    assert "Every date" not in waited.err
    status = run_cli("status", "--format", "json", "--detailed-exitcode", str(ws.folder))
    assert (status.code, json_of(status)["backfills"][0]["state"]) == (2, "not_applied")


@pytest.mark.parametrize("state", ["", "state: cancelled", "state: absent"])
def test_entries_not_declared_started_are_not_held_against_wait(quiet_flags, state):
    ws, run_cli = quiet_flags
    ws.write(ws.entry("quiet", extra=state))
    waited = run_cli("wait", "--timeout", "10m", "--format", "json", str(ws.folder))
    assert waited.code == 0, waited.err
    assert json_of(waited)["outcome"] == "completed"
    assert run_cli("status", "--detailed-exitcode", str(ws.folder)).code == 0


# -- 2. apply --wait with nothing to wait for --------------------------------------------------------------


@pytest.fixture
def lively_ws(
    tmp_path: Path, lively_emulator: MageServer, monkeypatch, capsys
) -> Iterator[tuple[Workspace, Callable[..., Ran]]]:
    """The flag pipeline on the emulator whose runs finish by themselves, quickly."""
    workspace = Workspace(tmp_path, lively_emulator, lively_emulator.flag_pipeline)
    lively_emulator.fail_dates()
    yield workspace, command_line(lively_emulator, monkeypatch, capsys)
    lively_emulator.fail_dates()
    with MageClient(lively_emulator.connection("owner")) as api:
        for live in mine(api, workspace):
            api.delete_backfill(workspace.pipeline_uuid, live.id)


def test_apply_wait_with_no_changes_claims_nothing_and_names_dates_that_failed_before(
    lively_ws, lively_emulator
):
    ws, run_cli = lively_ws
    lively_emulator.fail_dates("2024-07-02")
    ws.write(ws.entry("failed-before", extra="state: started", start="2024-07-01", end="2024-07-03"))
    assert run_cli("apply", "--auto-approve", "--wait", "--timeout", "10m", str(ws.folder)).code == 1

    again = run_cli("apply", "--auto-approve", "--wait", "--format", "json", str(ws.folder))
    assert again.code == 0, again.err  # nothing applied, nothing waited for: the apply itself succeeded
    assert "Every date" not in again.err and "No backfill of these manifests" not in again.err
    assert "Nothing to wait for: this apply started no runs" in again.err
    assert "Warning: not waited for, finished before this apply" in again.err
    assert f"{ws.name('failed-before')} (id" in again.err and ": failed dates: 2024-07-02" in again.err
    assert json.loads(again.out)["wait"]["wait"]["result"] == "nothing_to_wait_for"
    assert run_cli("wait", str(ws.folder)).code == 1  # which is what the wait job then reports


def test_apply_wait_whose_only_item_is_blocked_does_not_say_dates_completed(quiet_flags):
    ws, run_cli = quiet_flags
    ws.write(ws.entry("blocked", extra="state: started"))
    assert run_cli("apply", "--auto-approve", str(ws.folder)).code == 0
    ws.write(ws.entry("blocked", extra="state: cancelled"))
    assert run_cli("apply", "--auto-approve", str(ws.folder)).code == 0
    ws.write(ws.entry("blocked", extra="state: started"))  # a restart needs --allow-restart

    applied = run_cli("apply", "--auto-approve", "--wait", str(ws.folder))
    assert applied.code == 1
    assert "blocked" in applied.out
    assert "Every date" not in applied.err and "No backfill of these manifests" not in applied.out
    assert "Nothing to wait for: this apply started no runs" in applied.err
