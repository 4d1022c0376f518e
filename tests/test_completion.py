"""Shell completion (click's built-in): the README's lines produce a script, and bash completes with it."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.examples import ROOT
from tests.test_ci_files import BIN, clean_environment
from tests.test_readme import README, shell_blocks

SHELLS = ("bash", "zsh", "fish")


def completion_lines() -> dict[str, str]:
    """The README's completion line for each shell, by the shell its comment names."""
    (block,) = shell_blocks(README.read_text(encoding="utf-8"))["Commands"]
    lines = {}
    for line in block.splitlines():
        command, _, comment = line.partition("  # ")
        lines[comment.split(",")[0].strip()] = command.strip()
    return lines


def environment() -> dict[str, str]:
    return {**clean_environment(), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.parametrize("shell", SHELLS)
def test_the_readme_line_produces_a_completion_script(shell: str):
    line = completion_lines()[shell]
    assert f"_BACKFILL_SYNC_COMPLETE={shell}_source backfill-sync" in line
    script = subprocess.run(
        ["backfill-sync"],
        env={**environment(), "_BACKFILL_SYNC_COMPLETE": f"{shell}_source"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (script.returncode, script.stderr) == (0, "")
    assert "_BACKFILL_SYNC_COMPLETE=" in script.stdout and "backfill-sync" in script.stdout


def test_bash_completes_commands_and_option_values_with_the_readme_line(tmp_path):
    probe = f"""
{completion_lines()["bash"]}
complete -p backfill-sync
complete_words() {{
  COMPREPLY=(); COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _backfill_sync_completion "$1"
}}
complete_words backfill-sync pl; echo "commands: ${{COMPREPLY[*]}}"
complete_words backfill-sync plan --format m; echo "formats: ${{COMPREPLY[*]}}"
"""
    ran = subprocess.run(
        ["bash", "-c", probe], cwd=tmp_path, env=environment(), capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[0].startswith("complete ") and lines[0].endswith(" backfill-sync")
    assert "commands: plan" in lines
    assert "formats: markdown" in lines


def test_completion_is_documented_in_the_readme():
    assert set(completion_lines()) >= set(SHELLS)
    assert (ROOT / "README.md").read_text(encoding="utf-8").count("_BACKFILL_SYNC_COMPLETE=") == 3
