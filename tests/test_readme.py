"""The README works as written: its "Your first plan" block runs on a terminal, its commands exist."""

from __future__ import annotations

import os
import pty
import re
import select
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import click
import pytest

from backfill_sync.cli import cli
from tests.ci_commands import load_yaml
from tests.emulator_process import has_exited
from tests.examples import ROOT
from tests.test_ci_files import BIN, clean_environment

README = ROOT / "README.md"
PROMPT = "Apply these changes to Mage?"
BLOCK_TIMEOUT = 120.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def shell_blocks(text: str) -> dict[str, list[str]]:
    """The ```sh blocks of each `## ` section, by section title."""
    blocks: dict[str, list[str]] = {}
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        title, _, body = section.partition("\n")
        blocks[title.strip()] = [code for lang, code in _FENCE.findall(body) if lang == "sh"]
    return blocks


def fresh_clone(tmp_path: Path) -> Path:
    """What the block needs of a fresh clone after `make install`: the examples, the schemas, the venv."""
    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "examples", clone / "examples")
    shutil.copytree(ROOT / "schemas", clone / "schemas")
    (clone / ".venv" / "bin").mkdir(parents=True)
    (clone / ".venv" / "bin" / "backfill-sync").symlink_to(BIN / "backfill-sync")
    return clone


def run_on_a_terminal(script: str, cwd: Path, answer: str) -> str:
    """Run `script` with bash on a pseudo-terminal, typing `answer` at apply's prompt; all it printed."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=cwd,
        env={**clean_environment(), "TERM": "xterm"},
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    output, answered = b"", False
    deadline = time.monotonic() + BLOCK_TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # the terminal closed: every process on it has gone
                    break
                if not chunk:
                    break
                output += chunk
            if not answered and PROMPT.encode() in output:
                os.write(controller, answer.encode())
                answered = True
        process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        os.close(controller)
    return _ANSI.sub("", output.decode("utf-8", errors="replace")).replace("\r\n", "\n")


def test_your_first_plan_runs_as_written_on_a_terminal(tmp_path):
    (block,) = shell_blocks(README.read_text(encoding="utf-8"))["Your first plan"]
    clone = fresh_clone(tmp_path)
    # Around the block, not in it: learn the emulator's pid, say whether the block's own last line
    # stopped it (given five seconds to exit), and stop it by that pid whatever happens.
    harness = (
        "trap '"
        'pid="${BACKFILL_SYNC_EMULATOR_PID:-}"; '
        'for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done; '
        'kill -0 "$pid" 2>/dev/null && echo "harness: the emulator still runs"; '
        'echo "harness: emulator pid ${pid:-none}"; '
        'kill "$pid" 2>/dev/null'
        "' EXIT\n"
    )
    output = run_on_a_terminal(harness + block, clone, answer="y\n")

    pid = int(re.findall(r"harness: emulator pid (\d+)", output)[-1])
    assert "harness: the emulator still runs" not in output, "the block's last line stops the emulator"
    assert has_exited(pid)
    assert "Connection refused" not in output and "Traceback" not in output, output
    assert '+ create "reload-eu-2024-q1"' in output, output
    assert PROMPT in output
    assert "Apply complete: 2 done" in output, output
    assert output.rstrip().endswith(f"No changes.\n0\nharness: emulator pid {pid}"), output


def test_the_copied_manifest_keeps_a_working_modeline(tmp_path):
    (block,) = shell_blocks(README.read_text(encoding="utf-8"))["Your first plan"]
    clone = fresh_clone(tmp_path)
    copy_lines = [line for line in block.splitlines() if line.startswith(("mkdir ", "sed ", "cp "))]
    subprocess.run(["bash", "-e", "-c", "\n".join(copy_lines)], cwd=clone, check=True)
    first = (clone / "backfills" / "daily_sales.yaml").read_text(encoding="utf-8").splitlines()[0]
    reference = first.removeprefix("# yaml-language-server: $schema=")
    assert reference != first, first
    schema = clone / "schemas" / "backfill-manifest.schema.json"
    assert (clone / "backfills" / reference).resolve() == schema.resolve()


def readme_commands() -> list[list[str]]:
    """Every command of the README's shell blocks, split as the shell would (comments dropped)."""
    commands = []
    for blocks in shell_blocks(README.read_text(encoding="utf-8")).values():
        for block in blocks:
            for line in block.splitlines():
                lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
                lexer.whitespace_split = True
                words: list[str] = []
                for token in [*lexer, ";"]:
                    if token in (";", "&&", "||", "|", "&"):
                        commands.extend([words] if words else [])
                        words = []
                    elif not token.startswith(">"):
                        words.append(token)
    return commands


def test_every_readme_command_exists():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.MULTILINE))
    commands = readme_commands()
    assert len(commands) > 8
    for words in commands:
        program = Path(words[0]).name
        if program == "make":
            assert set(words[1:]) <= targets, words
        elif program == "backfill-sync":
            assert words[1] in cli.list_commands(click.Context(cli)), words


@pytest.mark.parametrize("path", [ROOT / ".pre-commit-hooks.yaml"], ids=["hooks"])
def test_the_readme_names_each_pre_commit_hook(path: Path):
    readme = README.read_text(encoding="utf-8")
    for hook in load_yaml(path):
        assert f"`{hook['id']}`" in readme, hook["id"]
