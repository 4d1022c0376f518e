"""How many requests plan and apply send (emulator only: its request log). Counts are exact; times are not
tested anywhere. Each test gets a fresh emulator, seeded in one request, and runs the CLI in-process."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backfill_sync import listing
from backfill_sync.cli import apply_cmd
from tests.contract.conftest import Ran, command_line
from tests.contract.servers import MageServer, call_json
from tests.emulator_process import start_emulator

WINDOW = {"start_datetime": "2024-01-01", "end_datetime": "2024-01-03", "interval_type": "day"}
LISTING = r"^/api/backfills$"
PIPELINES = r"^/api/pipelines$"
ONE_PIPELINE = r"^/api/pipelines/[^/]+$"
ONE_BACKFILL = r"^/api/backfills/\d+$"
PUT_ONE = r"^/api/pipelines/[^/]+/backfills/\d+$"


@pytest.fixture
def server() -> Iterator[MageServer]:
    with start_emulator("--run-seconds", "0") as url:
        yield MageServer.for_emulator(url)


@pytest.fixture
def cli(
    server: MageServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Ran]:
    return command_line(server, monkeypatch, capsys)


class Mage:
    """Seeds the emulator and counts what it was sent since the last `mark`."""

    def __init__(self, server: MageServer, folder: Path) -> None:
        self.server = server
        self.folder = folder
        self.start = 0

    def seed(self, pipelines: int, per_pipeline: int, *, status: str | None = None) -> None:
        uuids = [f"p{n:03d}" for n in range(pipelines)]
        rows = [
            {"pipeline_uuid": uuid, "name": f"b{n}", **WINDOW, "interval_units": 1, "status": status}
            for uuid in uuids
            for n in range(per_pipeline)
        ]
        call_json("POST", self.server.url + "/_emulator/seed", {"pipelines": uuids, "backfills": rows})

    def manifests(self, pipelines: int, per_pipeline: int, *, differing: int = 0, extra: str = "") -> str:
        """Manifests of the seeded backfills; the first `differing` pipelines' b0 has another variable."""
        for index in range(pipelines):
            uuid = f"p{index:03d}"
            entries = []
            for n in range(per_pipeline):
                variables = "\n    variables: {changed: 1}" if n == 0 and index < differing else ""
                entries.append(
                    f"  - name: b{n}\n    start_datetime: '2024-01-01'\n    end_datetime: '2024-01-03'\n"
                    f"    interval_type: day\n    interval_units: 1{variables}{extra}\n"
                )
            text = f"pipeline_uuid: {uuid}\nbackfills:\n{''.join(entries)}"
            (self.folder / f"{uuid}.yaml").write_text(text, encoding="utf-8")
        return str(self.folder)

    def mark(self) -> None:
        self.start = len(self.server.requests())

    def sent(self) -> Counter[str]:
        """Requests since the mark, by kind."""
        kinds: Counter[str] = Counter()
        for entry in self.server.requests()[self.start :]:
            kinds[_kind(entry)] += 1
        return kinds


def _kind(entry: dict[str, Any]) -> str:
    method, path, query = entry["method"], entry["path"], entry["query"]
    for name, pattern in (
        ("list backfills", LISTING),
        ("list pipelines", PIPELINES),
        ("read pipeline", ONE_PIPELINE),
        ("read backfill", ONE_BACKFILL),
        ("write backfill", PUT_ONE),
    ):
        if re.search(pattern, path):
            counted = " with run counts" if "include_run_count" in query else ""
            of = " of one pipeline" if "pipeline_uuid" in query else ""
            return f"{method} {name}{of}{counted}"
    return f"{method} {path}"


@pytest.fixture
def mage(server: MageServer, tmp_path: Path) -> Mage:
    folder = tmp_path / "backfills"
    folder.mkdir()
    return Mage(server, folder)


LOGIN = "POST /api/sessions"


def test_plan_reads_one_listing_of_backfills_and_one_of_pipelines(cli, mage):
    mage.seed(pipelines=20, per_pipeline=5)
    folder = mage.manifests(pipelines=20, per_pipeline=5, differing=2)
    mage.mark()
    planned = cli("plan", folder)
    assert planned.code == 0, planned.err
    assert "Plan: 0 to create, 2 to update" in planned.out
    assert mage.sent() == {LOGIN: 1, "GET list backfills": 1, "GET list pipelines": 1}


def test_plan_asks_run_counts_only_of_the_started_backfills_it_acts_on(cli, mage):
    mage.seed(pipelines=20, per_pipeline=5, status="running")
    folder = mage.manifests(pipelines=20, per_pipeline=5, differing=3)
    mage.mark()
    planned = cli("plan", folder)
    assert planned.code == 0, planned.err
    assert mage.sent() == {
        LOGIN: 1,
        "GET list backfills": 1,
        "GET list pipelines": 1,
        "GET read backfill with run counts": 3,
    }


def test_plan_of_one_pipeline_lists_that_pipeline_alone(cli, mage):
    mage.seed(pipelines=20, per_pipeline=5)
    folder = mage.manifests(pipelines=1, per_pipeline=5)
    mage.mark()
    assert cli("plan", folder).code == 0
    assert mage.sent() == {LOGIN: 1, "GET list backfills of one pipeline": 1, "GET read pipeline": 1}


def test_plan_lists_per_pipeline_when_every_backfill_would_take_more_pages(cli, mage, monkeypatch):
    monkeypatch.setattr(listing, "PAGE_BYTES", 20_000)  # about 40 backfills a page
    mage.seed(pipelines=40, per_pipeline=10)
    folder = mage.manifests(pipelines=2, per_pipeline=10)
    mage.mark()
    assert cli("plan", folder).code == 0
    # The first page of every backfill said 400 rows: ten pages more, against two listings.
    assert mage.sent() == {
        LOGIN: 1,
        "GET list backfills": 1,
        "GET list backfills of one pipeline": 2,
        "GET list pipelines": 1,
    }


def test_apply_of_its_own_plan_sends_one_put_per_update(cli, mage):
    mage.seed(pipelines=20, per_pipeline=5)
    folder = mage.manifests(pipelines=20, per_pipeline=5, differing=3)
    mage.mark()
    applied = cli("apply", "--auto-approve", folder)
    assert applied.code == 0, applied.out + applied.err
    assert mage.sent() == {
        LOGIN: 1,
        "GET list backfills": 1,
        "GET list pipelines": 1,
        "PUT write backfill": 3,
    }


def test_apply_of_a_saved_plan_checks_it_against_one_fresh_listing(cli, mage, tmp_path):
    mage.seed(pipelines=20, per_pipeline=5)
    folder = mage.manifests(pipelines=20, per_pipeline=5, differing=3)
    saved = tmp_path / "plan.json"
    assert cli("plan", "--out", str(saved), folder).code == 0
    mage.mark()
    applied = cli("apply", "--auto-approve", str(saved))
    assert applied.code == 0, applied.out + applied.err
    assert mage.sent() == {LOGIN: 1, "GET list backfills": 1, "PUT write backfill": 3}


def test_a_start_is_a_read_of_its_run_counts_and_a_put_then_a_count_of_its_runs(cli, mage):
    mage.seed(pipelines=3, per_pipeline=2)
    folder = mage.manifests(pipelines=3, per_pipeline=2, extra="\n    state: started")
    mage.mark()
    applied = cli("apply", "--auto-approve", folder)
    assert applied.code == 0, applied.out + applied.err
    # Per start: the re-read of its run counts just before `initial` (a start while runs still run
    # would run every date twice), the PUT, and the check that it made one run per date.
    assert mage.sent() == {
        LOGIN: 1,
        "GET list backfills": 1,
        "GET list pipelines": 1,
        "GET read backfill with run counts": 6,
        "PUT write backfill": 6,
        "GET /api/pipeline_runs": 6,
    }


def test_a_restart_is_a_read_of_its_run_counts_and_a_put(cli, mage):
    mage.seed(pipelines=2, per_pipeline=1, status="cancelled")
    folder = mage.manifests(pipelines=2, per_pipeline=1, extra="\n    state: started")
    mage.mark()
    applied = cli("apply", "--auto-approve", "--allow-restart", folder)
    assert applied.code == 0, applied.out + applied.err
    assert mage.sent() == {
        LOGIN: 1,
        "GET list backfills": 1,
        "GET list pipelines": 1,
        "GET read backfill with run counts": 4,  # two for the plan's progress, two before `initial`
        "PUT write backfill": 2,
    }


def test_apply_confirmed_at_a_prompt_lists_again_before_writing(cli, mage, monkeypatch):
    # A person may ponder the plan for minutes: what it saw is no longer "now".
    monkeypatch.setattr(apply_cmd, "_confirm", lambda auto_approve: True)
    mage.seed(pipelines=20, per_pipeline=5)
    folder = mage.manifests(pipelines=20, per_pipeline=5, differing=3)
    mage.mark()
    assert cli("apply", folder).code == 0
    assert mage.sent() == {
        LOGIN: 1,
        "GET list backfills": 2,
        "GET list pipelines": 1,
        "PUT write backfill": 3,
    }
