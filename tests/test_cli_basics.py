"""The CLI's front matter: version, help, exit-code mapping."""

from __future__ import annotations

import subprocess
import sys

import click
import click.termui
import pytest

from backfill_sync import __version__
from backfill_sync.cli import by_ctrl_c, main


def test_version_prints_the_package_version(capsys):
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_usage_errors_exit_1_not_2(capsys):
    assert main(["no-such-command"]) == 1
    assert "No such command" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_cli():
    done = subprocess.run(
        [sys.executable, "-m", "backfill_sync", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert __version__ in done.stdout


def test_an_empty_mage_url_is_an_error_not_localhost(monkeypatch, capsys):
    # click reads an empty variable as unset; in CI that is a missing secret.
    monkeypatch.setenv("MAGE_URL", "")
    assert main(["plan", "examples/backfills"]) == 1
    assert "MAGE_URL is set but empty" in capsys.readouterr().err


def test_import_help_says_force_replaces_the_file(capsys):
    assert main(["import", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--force replaces the file with what Mage holds" in help_text
    assert "comments, description and previous_names are lost" in help_text
    assert "refresh" not in help_text


def help_of(capsys, *argv: str) -> str:
    assert main([*argv, "--help"]) == 0
    return " ".join(capsys.readouterr().out.split())


def test_top_level_help_lists_every_exit_code(capsys):
    text = help_of(capsys)
    for code in ("0 success", "1 any error", "2 plan --detailed-exitcode", "3 status --detailed-exitcode"):
        assert code in text
    assert "130 interrupted (Ctrl-C)" in text


def test_fmt_help_gives_the_whole_canonical_key_order(capsys):
    from backfill_sync.manifests.canonical import BACKFILL_ORDER

    assert f"per backfill {', '.join(BACKFILL_ORDER)})" in help_of(capsys, "fmt")


def test_validate_help_example_shows_every_key_of_a_started_entry(capsys):
    text = help_of(capsys, "validate")
    for key in (
        "start_datetime",
        "end_datetime",
        "interval_type",
        "interval_units",
        "state",
        "retry_failed_before",
    ):
        assert f"{key}:" in text


def test_apply_wait_help_names_new_dates_too(capsys):
    assert "started, restarted, retried or ran new dates of" in help_of(capsys, "apply")


def test_ctrl_c_at_a_confirmation_prompt_counts_as_ctrl_c(monkeypatch):
    def pressed_ctrl_c(prompt: str) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(click.termui, "visible_prompt_func", pressed_ctrl_c)
    with pytest.raises(click.Abort) as caught:
        click.confirm("Apply these changes to Mage?")
    assert by_ctrl_c(caught.value)
    assert not by_ctrl_c(click.Abort())
