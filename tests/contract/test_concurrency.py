"""Several applies of the same manifests at once (two CI jobs, a laptop and CI): no twin survives, no
backfill is started twice, and each apply says truthfully who did what.

Each apply is a real `backfill-sync apply` process; they race on one server. On the emulator, four at
a time over several trials; under `-m real_mage`, two at a time on real Mage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from backfill_sync.client import MageClient
from backfill_sync.models import BackfillFields
from tests.contract.servers import MageServer
from tests.contract.workspace import Workspace, mine

STARTED_DATES = 3  # each started backfill's window: 2024-07-01 .. 2024-07-03


# Four applies at a time over six trials on the emulator (its runs never finish: counts are exact);
# two at a time over two trials on real Mage, which answers one request at a time anyway.
TRIALS = [
    *(pytest.param("quiet_emulator", 4, id=f"emulator-trial{n}") for n in range(6)),
    *(
        pytest.param("real_mage_server", 2, id=f"real-mage-trial{n}", marks=pytest.mark.real_mage)
        for n in range(2)
    ),
]


def parallel_applies(server: MageServer, folder: Path, count: int) -> list[tuple[int, dict[str, Any]]]:
    """Start `count` applies of the folder at once; their exit codes and JSON results."""
    env = {
        **os.environ,
        "MAGE_URL": server.url,
        "MAGE_EMAIL": server.owner.email,
        "MAGE_PASSWORD": server.owner.password,
    }
    env.pop("MAGE_TOKEN", None)
    command = [
        sys.executable,
        "-m",
        "backfill_sync",
        "apply",
        "--auto-approve",
        "--format",
        "json",
        str(folder),
    ]
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert out, f"apply printed no result: {err}"
        results.append((process.returncode, json.loads(out)))
    return results


def clean_up(server: MageServer, ws: Workspace) -> None:
    with MageClient(server.connection("owner")) as api:
        for live in mine(api, ws):
            if live.status in ("initial", "running"):
                api.set_status(ws.pipeline_uuid, live.id, "cancelled")
            api.delete_backfill(ws.pipeline_uuid, live.id)


def check_trial(
    server: MageServer, ws: Workspace, labels: list[str], started: set[str], applies: int
) -> None:
    results = parallel_applies(server, ws.folder, applies)
    with MageClient(server.connection("owner")) as api:
        rows = mine(api, ws)
        names = Counter(row.name for row in rows)
        assert names == Counter(ws.name(label) for label in labels), "a twin survived, or one is missing"
        for row in rows:
            if row.name in {ws.name(label) for label in started}:
                assert api.count_runs(row.id) == STARTED_DATES, f"{row.name} was started more than once"
    starts: Counter[str] = Counter()
    creates: Counter[str] = Counter()
    story = "\n".join(
        f"apply {n}: {item['name'][-1]} {item['outcome']} {item['steps']} {item['message']}"
        for n, (_, document) in enumerate(results)
        for item in document["items"]
    )
    for code, document in results:
        assert code == 0, story
        for item in document["items"]:
            assert item["outcome"] in ("done", "unchanged"), story
            if item["outcome"] == "unchanged" and "another apply" not in (item["message"] or ""):
                assert item["message"] == "already as planned", story
            steps = item["steps"]
            starts[item["name"]] += sum(step.startswith("started") for step in steps)
            kept = [step for step in steps if step.startswith("created id")] and not any(
                step.startswith("deleted it again") for step in steps
            )
            creates[item["name"]] += bool(kept)
    # Exactly one apply created each backfill; every other one said it was already done, or done by
    # another apply (some may have written the same fields too). Two applies may both send a start in
    # the same instant: Mage ignores an `initial` while the status is still `initial`, so it runs once
    # (the run counts above), and both say they started it.
    assert creates == Counter(ws.name(label) for label in labels), story
    assert {name for name, count in starts.items() if count} == {ws.name(label) for label in started}, story


@pytest.mark.parametrize(("where", "applies"), TRIALS)
def test_parallel_applies_leave_one_of_each_started_once(tmp_path, request, where, applies):
    racing: MageServer = request.getfixturevalue(where)
    ws = Workspace(tmp_path, racing)
    labels = ["a", "b", "c", "d"]
    started = {"b", "d"}
    ws.write(
        *(
            ws.entry(
                label,
                start="2024-07-01",
                end="2024-07-03",
                extra="state: started" if label in started else "",
            )
            for label in labels
        )
    )
    try:
        check_trial(racing, ws, labels, started, applies)
    finally:
        clean_up(racing, ws)


# -- a server slower than the client: the outcome is confirmed, and a twin repaired ---------------------


def test_a_create_slower_than_the_client_timeout_is_found_not_sent_again(emulator_server):
    server = emulator_server
    name = f"slow-{os.getpid()}-{id(server)}"
    server.inject(method="POST", path=r"/backfills$", kind="latency", seconds=1.0, times=1)
    before = len(server.requests())
    try:
        # Read-backs every 2 s for up to 4 s: the create, answered after 1 s, is seen at the second one.
        with MageClient(server.connection("owner"), timeout=0.3, confirm_seconds=4.0) as api:
            created = api.create_backfill(server.pipeline_uuid, BackfillFields(name=name))
            same_name = [row for row in api.list_backfills(server.pipeline_uuid) if row.name == name]
        posts = [
            r
            for r in server.requests()[before:]
            if r["method"] == "POST" and r["path"].endswith("/backfills")
        ]
        assert ([row.id for row in same_name], len(posts)) == ([created.id], 1)
    finally:
        server.clear_faults()
        with MageClient(server.connection("owner")) as api:
            for row in api.list_backfills(server.pipeline_uuid):
                if row.name == name:
                    api.delete_backfill(server.pipeline_uuid, row.id)


def test_the_next_plan_removes_the_twin_a_lost_create_left(tmp_path, request):
    server: MageServer = request.getfixturevalue("quiet_emulator")
    ws = Workspace(tmp_path, server)
    ws.write(ws.entry("twinned", extra="state: started"))
    with MageClient(server.connection("owner")) as api:
        first = api.create_backfill(server.pipeline_uuid, BackfillFields(name=ws.name("twinned")))
        twin = api.create_backfill(server.pipeline_uuid, BackfillFields(name=ws.name("twinned")))
    env = {
        **os.environ,
        "MAGE_URL": server.url,
        "MAGE_EMAIL": server.owner.email,
        "MAGE_PASSWORD": server.owner.password,
    }
    try:
        planned = subprocess.run(
            [sys.executable, "-m", "backfill_sync", "plan", str(ws.folder)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert (
            f'- delete twins of "{ws.name("twinned")}" (id {first.id}): ids {twin.id} (never started)'
            in planned.stdout
        )
        applied = subprocess.run(
            [sys.executable, "-m", "backfill_sync", "apply", "--auto-approve", str(ws.folder)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert applied.returncode == 0, applied.stdout + applied.stderr
        with MageClient(server.connection("owner")) as api:
            assert [row.id for row in mine(api, ws)] == [first.id]
            assert api.count_runs(first.id) == 5
    finally:
        clean_up(server, ws)
