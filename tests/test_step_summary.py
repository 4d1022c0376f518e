"""plan under GitHub Actions: its Markdown is appended to $GITHUB_STEP_SUMMARY, within GitHub's 1 MiB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from backfill_sync.cli import main
from backfill_sync.cli.plan_cmd import append_step_summary
from backfill_sync.cli.report import STEP_SUMMARY_LIMIT
from backfill_sync.models import Plan
from backfill_sync.render import MARKDOWN_MARKER
from tests.examples import EXAMPLE_BACKFILLS, OWNER_EMAIL, OWNER_PASSWORD, examples_emulator
from tests.factories import desired, manifest, plan_of

EARLIER = "## Written by an earlier command of the same step\n"


@pytest.fixture(scope="module")
def mage_url() -> Iterator[str]:
    with examples_emulator() as url:
        yield url


@pytest.fixture
def summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A step summary file as the runner hands it over, with what an earlier command wrote."""
    path = tmp_path / "step_summary.md"
    path.write_text(EARLIER, encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(path))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    return path


def run_plan(mage_url: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setenv("MAGE_URL", mage_url)
    monkeypatch.setenv("MAGE_EMAIL", OWNER_EMAIL)
    monkeypatch.setenv("MAGE_PASSWORD", OWNER_PASSWORD)
    monkeypatch.delenv("MAGE_TOKEN", raising=False)
    return main(["plan", *args, str(EXAMPLE_BACKFILLS)])


def test_plan_appends_its_markdown_and_keeps_what_was_there(mage_url, summary, monkeypatch, capsys):
    assert run_plan(mage_url, monkeypatch, "--detailed-exitcode") == 2
    capsys.readouterr()
    assert run_plan(mage_url, monkeypatch, "--format", "json") == 0
    # stdout stays the chosen format; the Markdown goes only to the summary.
    assert json.loads(capsys.readouterr().out)
    text = summary.read_text(encoding="utf-8")
    assert text.startswith(EARLIER + MARKDOWN_MARKER + "\n")
    assert text.count(MARKDOWN_MARKER) == 2, "each plan appends; none overwrites"
    assert "<code>daily_sales</code>" in text


@pytest.mark.parametrize(
    ("actions", "summary_set"),
    [
        pytest.param(None, True, id="not-under-actions"),
        pytest.param("false", True, id="actions-false"),
        pytest.param("true", False, id="no-summary-file-given"),
    ],
)
def test_nothing_is_written_outside_github_actions(
    mage_url, tmp_path, monkeypatch, actions: str | None, summary_set: bool
):
    path = tmp_path / "step_summary.md"
    if actions is None:
        monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    else:
        monkeypatch.setenv("GITHUB_ACTIONS", actions)
    if summary_set:
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(path))
    else:
        monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run_plan(mage_url, monkeypatch) == 0
    assert list(tmp_path.iterdir()) == []


def wide_plan() -> Plan:
    """A plan whose Markdown is under 1 MiB in characters but well over it in UTF-8 bytes."""
    manifests = [
        manifest(desired("b", pipeline=f"p{n:03}", variables={"note": "ü" * 2000}), pipeline=f"p{n:03}")
        for n in range(450)
    ]
    return plan_of(*manifests)


def test_the_limit_is_counted_in_bytes(summary):
    append_step_summary(wide_plan())
    data = summary.read_bytes()
    assert len(data) <= STEP_SUMMARY_LIMIT
    written = data.decode("utf-8").removeprefix(EARLIER)
    assert written.startswith(MARKDOWN_MARKER)
    assert "not shown" in written, "sections were dropped to fit, and the summary says so"
    assert len(data) > STEP_SUMMARY_LIMIT - 10_000, "it uses the room there is"


def test_earlier_writes_of_the_step_count_against_the_limit(summary):
    summary.write_bytes(b"x" * (STEP_SUMMARY_LIMIT - 20_000))
    append_step_summary(wide_plan())
    data = summary.read_bytes()
    assert STEP_SUMMARY_LIMIT - 20_000 < len(data) <= STEP_SUMMARY_LIMIT
    assert MARKDOWN_MARKER.encode() in data


def test_a_full_summary_is_left_alone_with_a_warning(summary, capsys):
    before = b"x" * (STEP_SUMMARY_LIMIT - 100)
    summary.write_bytes(before)
    append_step_summary(wide_plan())
    assert summary.read_bytes() == before
    assert "job summary is full" in capsys.readouterr().err
