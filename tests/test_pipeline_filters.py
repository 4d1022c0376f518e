"""--pipeline and --exclude end to end: plan and apply touch only the selected pipelines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backfill_sync.cli import main
from backfill_sync.client import MageClient
from backfill_sync.models import MageConnection
from tests.examples import OWNER_EMAIL, OWNER_PASSWORD, copy_examples, example_pipelines, examples_emulator

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def mage_url() -> Iterator[str]:
    """A fresh emulator per test: applies here create backfills that other tests must not see."""
    with examples_emulator() as url:
        yield url


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return copy_examples(tmp_path / "backfills")


@pytest.fixture
def cli(mage_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    monkeypatch.setenv("MAGE_URL", mage_url)
    monkeypatch.setenv("MAGE_EMAIL", OWNER_EMAIL)
    monkeypatch.setenv("MAGE_PASSWORD", OWNER_PASSWORD)
    monkeypatch.delenv("MAGE_TOKEN", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def live_pipelines(mage_url: str) -> dict[str, int]:
    """How many backfills each example pipeline has in Mage."""
    connection = MageConnection(url=mage_url, email=OWNER_EMAIL, password=OWNER_PASSWORD)
    with MageClient(connection) as client:
        return {uuid: len(client.list_backfills(uuid)) for uuid in example_pipelines()}


def planned_pipelines(plan_json: str) -> list[str]:
    return [pipeline["pipeline_uuid"] for pipeline in json.loads(plan_json)["pipelines"]]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param(["--pipeline", "daily_*"], ["daily_sales"], id="one-glob"),
        pytest.param(
            ["--pipeline", "daily_*", "--pipeline", "monthly_invoices"],
            ["daily_sales", "monthly_invoices"],
            id="repeated-pipeline",
        ),
        pytest.param(
            ["--exclude", "*_sales", "--exclude", "hourly_*"],
            ["inventory_snapshot", "monthly_invoices"],
            id="repeated-exclude",
        ),
        pytest.param(
            ["--pipeline", "*ly_*", "--exclude", "hourly_*"],
            ["daily_sales", "monthly_invoices"],
            id="exclude-beats-pipeline",
        ),
    ],
)
def test_plan_shows_only_the_selected_pipelines(cli, folder, filters: list[str], expected: list[str]):
    code, out, err = cli("plan", "--format", "json", *filters, str(folder))
    assert code == EXIT_OK, err
    assert sorted(planned_pipelines(out)) == expected


def test_apply_creates_only_the_selected_pipelines_backfills(cli, folder, mage_url):
    selected = ("--pipeline", "*_*", "--exclude", "hourly_*", "--exclude", "inventory_*")
    code, out, err = cli("apply", "--auto-approve", *selected, str(folder))
    assert code == EXIT_OK, out + err
    assert live_pipelines(mage_url) == {
        "daily_sales": 2,
        "hourly_web_events": 0,
        "inventory_snapshot": 0,
        "monthly_invoices": 2,
    }
    # The selection is now in sync; the rest of the folder still is not.
    assert cli("plan", "--detailed-exitcode", *selected, str(folder))[0] == EXIT_OK
    assert cli("plan", "--detailed-exitcode", str(folder))[0] == EXIT_CHANGES


def test_a_saved_plan_is_filtered_when_made_not_when_applied(cli, folder, mage_url, tmp_path):
    saved = tmp_path / "plan.json"
    code, _, err = cli("plan", "--pipeline", "inventory_*", "--out", str(saved), str(folder))
    assert code == EXIT_OK, err
    assert planned_pipelines(saved.read_text(encoding="utf-8")) == ["inventory_snapshot"]

    for flag in ("--pipeline", "--exclude"):
        code, out, err = cli("apply", "--auto-approve", flag, "inventory_*", str(saved))
        assert code == EXIT_ERROR
        assert "--pipeline/--exclude select manifests, not parts of a saved plan" in err
    assert live_pipelines(mage_url) == dict.fromkeys(example_pipelines(), 0), "nothing was applied"

    code, out, err = cli("apply", "--auto-approve", str(saved))
    assert code == EXIT_OK, out + err
    assert live_pipelines(mage_url)["inventory_snapshot"] == 1
    assert sum(live_pipelines(mage_url).values()) == 1
