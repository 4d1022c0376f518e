"""plan and apply end to end: the CLI against a server, asserting exit codes, output and Mage's final state.

Every scenario runs against the emulator (runs never finish on their own there, so counts are exact) and,
under `-m real_mage`, against a real Mage, where the scheduler races the test and counts are ranges.
"""

from __future__ import annotations

import json
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from backfill_sync.client import MageClient
from backfill_sync.models import BackfillFields, LiveBackfill
from backfill_sync.render.plan_json import plan_digest
from tests.contract.servers import MageServer
from tests.contract.workspace import Workspace, by_name, mine
from tests.emulator_http import Api, login

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


@pytest.fixture
def ws(tmp_path: Path, server: MageServer, mage: MageClient) -> Iterator[Workspace]:
    workspace = Workspace(tmp_path, server)
    try:
        yield workspace
    finally:
        for live in mine(mage, workspace):
            if live.status in ("initial", "running"):
                mage.set_status(server.pipeline_uuid, live.id, "cancelled")
            mage.delete_backfill(server.pipeline_uuid, live.id)


def total_runs(mage: MageClient, backfill: LiveBackfill) -> int:
    counts = mage.run_counts([backfill]).get(backfill.id)
    return 0 if counts is None else counts.total


# -- the life of a backfill ----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "editor"])
def test_create_and_start_then_nothing_to_do(cli, ws, mage, role):
    ws.write(ws.entry("plain"), ws.entry("go", extra="state: started\nvariables: {region: eu}"))

    planned = cli("plan", "--detailed-exitcode", str(ws.folder), role=role)
    assert planned.code == EXIT_CHANGES, planned.err
    assert f'+ create "{ws.name("plain")}"' in planned.out
    assert f'> start "{ws.name("go")}": +5 runs' in planned.out
    assert planned.out.splitlines()[-1] == (
        "Plan: 2 to create, 0 to update, 1 to start, 0 to restart, 0 to retry, 0 to run new dates, "
        "0 to cancel, 0 to delete, 0 blocked; +5 runs, 0 stopped"
    )

    applied = cli("apply", "--auto-approve", str(ws.folder), role=role)
    assert applied.code == EXIT_OK, applied.out + applied.err
    assert "Apply complete: 2 done" in applied.out

    started = by_name(mage, ws, "go")
    assert started.status is not None
    assert started.variables == {"region": "eu"}
    assert total_runs(mage, started) == 5
    assert by_name(mage, ws, "plain").status is None

    again = cli("plan", "--detailed-exitcode", str(ws.folder), role=role)
    assert again.code == EXIT_OK, again.out + again.err
    assert "No changes." in again.out


def test_field_edit_and_rename_update_in_place(cli, ws, mage):
    ws.write(ws.entry("old", extra="variables: {a: 1}"))
    assert cli("apply", "--auto-approve", str(ws.folder)).code == EXIT_OK
    original = by_name(mage, ws, "old")

    ws.write(
        ws.entry(
            "new",
            end="2024-01-10",
            extra=f"previous_names: [{ws.name('old')}]\nvariables: {{a: 2, b: x}}",
        )
    )
    planned = cli("plan", str(ws.folder))
    assert planned.code == EXIT_OK
    assert f'~ name: "{ws.name("old")}" -> "{ws.name("new")}"' in planned.out
    assert '~ end_datetime: "2024-01-05T00:00:00Z" -> "2024-01-10T00:00:00Z"' in planned.out
    assert "a: 1 -> 2" in planned.out

    assert cli("apply", "--auto-approve", str(ws.folder)).code == EXIT_OK
    renamed = by_name(mage, ws, "new")
    assert renamed.id == original.id
    assert renamed.end_datetime is not None and renamed.end_datetime.day == 10
    assert renamed.variables == {"a": 2, "b": "x"}
    assert cli("plan", "--detailed-exitcode", str(ws.folder)).code == EXIT_OK


def test_cancel_stops_the_unfinished_runs(cli, ws, mage, server):
    # Hundreds of runs, so that on real Mage the scheduler cannot finish them all before the cancel.
    window = {"start": "2024-01-01", "end": "2024-01-13T11:00:00"}
    ws.write(
        ws.entry("long", extra="state: started", **window).replace(
            "interval_type: day", "interval_type: hour"
        )
    )
    assert cli("apply", "--auto-approve", str(ws.folder)).code == EXIT_OK
    assert total_runs(mage, by_name(mage, ws, "long")) == 300

    ws.write(
        ws.entry("long", extra="state: cancelled", **window).replace(
            "interval_type: day", "interval_type: hour"
        )
    )
    planned = cli("plan", "--format", "json", str(ws.folder))
    assert planned.code == EXIT_OK
    (item,) = [
        i for p in json.loads(planned.out)["pipelines"] for i in p["items"] if i["name"] == ws.name("long")
    ]
    (cancel,) = item["actions"]
    assert cancel["kind"] == "cancel"
    if server.kind == "emulator":
        assert cancel["runs"] == 300
    else:
        assert 0 <= cancel["runs"] <= 300

    assert cli("apply", "--auto-approve", str(ws.folder)).code == EXIT_OK
    assert by_name(mage, ws, "long").status == "cancelled"
    assert cli("plan", "--detailed-exitcode", str(ws.folder)).code == EXIT_OK


@pytest.mark.parametrize(
    "with_schedule", [pytest.param(True, id="full-entry"), pytest.param(False, id="name-only")]
)
def test_absent_deletes_and_says_runs_stay(cli, ws, mage, with_schedule):
    ws.write(ws.entry("doomed", extra="state: started"))
    assert cli("apply", "--auto-approve", str(ws.folder)).code == EXIT_OK
    doomed = by_name(mage, ws, "doomed")

    if with_schedule:
        ws.write(ws.entry("doomed", extra="state: absent"))
    else:  # deleting needs only the name: the schedule may already be gone from the manifest
        ws.write(f"- name: {ws.name('doomed')}\n  state: absent")
    planned = cli("plan", str(ws.folder))
    assert f'- delete "{ws.name("doomed")}" (id {doomed.id}, ' in planned.out
    assert "Mage keeps its pipeline runs after the backfill is deleted" in planned.out

    assert cli("apply", "--auto-approve", str(ws.folder)).code == EXIT_OK
    assert mine(mage, ws) == []
    assert mage.get_backfill(doomed.id) is None
    assert cli("plan", "--detailed-exitcode", str(ws.folder)).code == EXIT_OK


def test_unmanaged_backfills_are_listed_and_left_alone(cli, ws, mage, server):
    stray = mage.create_backfill(server.pipeline_uuid, BackfillFields(name=ws.name("by-hand")))
    ws.write(ws.entry("managed"))

    planned = cli("plan", str(ws.folder))
    assert "Unmanaged, left alone:" in planned.out
    assert f'id {stray.id} "{ws.name("by-hand")}"' in planned.out

    assert cli("apply", "--auto-approve", str(ws.folder)).code == EXIT_OK
    assert mage.get_backfill(stray.id) == stray


def test_restart_is_blocked_unless_allowed(cli, ws, mage):
    ws.write(ws.entry("again", extra="state: cancelled"))
    assert cli("apply", "--auto-approve", str(ws.folder)).code == EXIT_OK
    ws.write(ws.entry("again", extra="state: started"))

    planned = cli("plan", "--detailed-exitcode", str(ws.folder))
    assert planned.code == EXIT_CHANGES
    assert (
        "[blocked: restarting re-creates every run; pass --allow-restart to plan and apply it]" in planned.out
    )
    blocked = cli("apply", "--auto-approve", str(ws.folder))
    assert blocked.code == EXIT_ERROR
    assert by_name(mage, ws, "again").status == "cancelled"

    assert cli("apply", "--auto-approve", "--allow-restart", str(ws.folder)).code == EXIT_OK
    assert by_name(mage, ws, "again").status != "cancelled"


# -- saved plans ---------------------------------------------------------------------------------------


def test_a_saved_plan_is_applied_exactly(cli, ws, mage, tmp_path):
    ws.write(ws.entry("saved", extra="state: started"))
    plan_file = tmp_path / "plan.json"
    assert cli("plan", "--out", str(plan_file), str(ws.folder)).code == EXIT_OK
    # A manifest edited after the plan was saved does not change what the saved plan does.
    ws.write(ws.entry("saved", end="2024-01-31", extra="state: started"))

    applied = cli("apply", "--auto-approve", str(plan_file))
    assert applied.code == EXIT_OK, applied.out + applied.err
    saved = by_name(mage, ws, "saved")
    assert saved.end_datetime is not None and saved.end_datetime.day == 5
    assert total_runs(mage, saved) == 5
    assert "unchanged" in cli("apply", "--auto-approve", str(plan_file)).out


def test_a_stale_saved_plan_is_refused_and_writes_nothing(cli, ws, mage, server, tmp_path):
    ws.write(ws.entry("moving"))
    assert cli("apply", "--auto-approve", str(ws.folder)).code == EXIT_OK
    ws.write(ws.entry("moving", end="2024-01-09"))
    plan_file = tmp_path / "plan.json"
    assert cli("plan", "--out", str(plan_file), str(ws.folder)).code == EXIT_OK

    moving = by_name(mage, ws, "moving")
    mage.update_backfill(server.pipeline_uuid, moving.id, BackfillFields(interval_units=2))

    applied = cli("apply", "--auto-approve", str(plan_file))
    assert applied.code == EXIT_ERROR
    assert f"backfill id {moving.id} changed since the plan was made (interval_units)" in applied.out
    after = by_name(mage, ws, "moving")
    assert (after.interval_units, after.end_datetime) == (2, moving.end_datetime)


def test_a_plan_for_another_mage_is_refused(cli, ws, tmp_path):
    ws.write(ws.entry("elsewhere"))
    plan_file = tmp_path / "plan.json"
    assert cli("plan", "--out", str(plan_file), str(ws.folder)).code == EXIT_OK
    saved = json.loads(plan_file.read_text())
    saved["mage_url"] = "http://127.0.0.1:9"  # as if it had been made against that Mage
    saved["digest"] = plan_digest(saved)
    plan_file.write_text(json.dumps(saved))

    applied = cli("apply", "--auto-approve", str(plan_file))
    assert applied.code == EXIT_ERROR
    assert "was made for Mage at http://127.0.0.1:9" in applied.err


# -- refusals and exit codes ---------------------------------------------------------------------------


def test_an_unknown_pipeline_is_an_error_not_a_create(cli, ws):
    (ws.folder / "no_such_pipeline_e2e.yaml").write_text(
        "pipeline_uuid: no_such_pipeline_e2e\nbackfills:\n" + textwrap.indent(ws.entry("x"), "  ") + "\n"
    )
    planned = cli("plan", str(ws.folder / "no_such_pipeline_e2e.yaml"))
    assert planned.code == EXIT_ERROR
    assert "no_such_pipeline_e2e.yaml: Mage at" in planned.err
    assert "has no pipeline 'no_such_pipeline_e2e'" in planned.err


def test_apply_without_a_terminal_needs_auto_approve(cli, ws, mage):
    ws.write(ws.entry("unasked"))
    refused = cli("apply", str(ws.folder))
    assert refused.code == EXIT_ERROR
    assert "pass --auto-approve" in refused.err
    assert mine(mage, ws) == []


def test_too_many_runs_are_refused_before_any_write(cli, ws, mage):
    ws.write(ws.entry("big", extra="state: started"))
    refused = cli("apply", "--auto-approve", "--max-total-runs", "4", str(ws.folder))
    assert refused.code == EXIT_ERROR
    assert "starts 5 pipeline runs, more than --max-total-runs 4" in refused.err
    assert mine(mage, ws) == []


# -- emulator only: faults and the request log ---------------------------------------------------------

emulator_only = pytest.mark.parametrize("server", ["emulator"], indirect=True)


@emulator_only
def test_an_invalid_manifest_sends_nothing(cli, ws, server):
    ws.write(ws.entry("bad").replace("interval_units: 1", "interval_units: 0"))
    before = len(server.requests())
    planned = cli("plan", str(ws.folder))
    assert planned.code == EXIT_ERROR
    assert "backfills[0].interval_units" in planned.err
    assert len(server.requests()) == before


@emulator_only
def test_an_interrupted_apply_is_finished_by_the_next_without_repeats(cli, ws, mage, server):
    ws.write(
        ws.entry("first", extra="state: started"),
        ws.entry("second", extra="state: started"),
        ws.entry("third", extra="state: started"),
    )
    # Mage answers one status change with an error body: that item fails, the others go on.
    server.inject(method="PUT", path=r"/backfills/\d+$", kind="error_body", times=1)
    first = cli("apply", "--auto-approve", "--parallelism", "1", str(ws.folder))
    assert first.code == EXIT_ERROR
    assert "failed" in first.out and "Apply incomplete" in first.out
    server.clear_faults()

    second = cli("apply", "--auto-approve", str(ws.folder))
    assert second.code == EXIT_OK, second.out + second.err
    rows = mine(mage, ws)
    assert sorted(row.name or "" for row in rows) == [ws.name(n) for n in ("first", "second", "third")]
    assert all(total_runs(mage, row) == 5 for row in rows)
    assert cli("plan", "--detailed-exitcode", str(ws.folder)).code == EXIT_OK


@emulator_only
def test_a_row_mage_cannot_read_is_named_with_its_remedy(cli, ws, server, tmp_path):
    pipeline = f"e2e_poisoned_{uuid.uuid4().hex[:6]}"
    raw = Api(server.url, login(server.url, server.owner.email, server.owner.password))
    raw("POST", "/api/pipelines", {"pipeline": {"name": pipeline, "type": "python"}})
    spoilt = raw.create(pipeline, name="spoilt")
    raw.put(spoilt["id"], interval_type="fortnight")  # Mage saves it, then cannot read the row back
    manifest = tmp_path / f"{pipeline}.yaml"
    manifest.write_text(f"pipeline_uuid: {pipeline}\nbackfills: []\n")

    planned = cli("plan", str(manifest))
    assert planned.code == EXIT_ERROR
    assert f"cannot list the backfills of pipeline '{pipeline}'" in planned.err
    assert "fix the row in Mage's database" in planned.err


@emulator_only
def test_a_row_mage_cannot_read_is_named_among_healthy_pipelines(cli, ws, server, tmp_path):
    # One unreadable row breaks a listing of every backfill too: plan then lists pipeline by pipeline.
    pipeline = f"e2e_poisoned_{uuid.uuid4().hex[:6]}"
    raw = Api(server.url, login(server.url, server.owner.email, server.owner.password))
    raw("POST", "/api/pipelines", {"pipeline": {"name": pipeline, "type": "python"}})
    spoilt = raw.create(pipeline, name="spoilt")
    raw.put(spoilt["id"], interval_type="fortnight")
    ws.write(ws.entry("healthy"))
    (ws.folder / f"{pipeline}.yaml").write_text(f"pipeline_uuid: {pipeline}\nbackfills: []\n")

    planned = cli("plan", str(ws.folder))
    assert planned.code == EXIT_ERROR
    assert f"cannot list the backfills of pipeline '{pipeline}'" in planned.err
    assert ws.pipeline_uuid not in planned.err


def test_apply_json_follows_its_published_schema(cli, ws, mage):
    ws.write(ws.entry("again", extra="state: cancelled"))
    assert cli("apply", "--auto-approve", str(ws.folder)).code == EXIT_OK
    ws.write(ws.entry("again", extra="state: started"), ws.entry("fresh"))

    applied = cli("apply", "--auto-approve", "--format", "json", str(ws.folder))
    assert applied.code == EXIT_ERROR  # the restart is blocked
    document = json.loads(applied.out)  # stdout holds only the JSON; the plan went to stderr
    schema = json.loads((Path(__file__).parents[2] / "schemas" / "apply-result.schema.json").read_text())
    jsonschema.validate(document, schema)
    outcomes = {item["name"]: item["outcome"] for item in document["items"]}
    assert outcomes == {ws.name("again"): "blocked", ws.name("fresh"): "done"}
    assert document["ok"] is False
