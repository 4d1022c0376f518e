"""The CLI's front matter: version, help, exit-code mapping."""

from __future__ import annotations

import subprocess
import sys

from backfill_sync import __version__
from backfill_sync.cli import main


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
