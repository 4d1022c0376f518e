"""Start-up: the group lists every command without importing it; light paths stay light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from backfill_sync.cli import COMMANDS, cli, main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "backfills"
HEAVY = ("httpx", "deepdiff", "ruamel", "backfill_sync.emulator", "backfill_sync.client", "jsonschema")


def modules_after(*argv: str) -> set[str]:
    """The modules a fresh interpreter has imported after running `backfill-sync ARGV`."""
    script = (
        "import sys\n"
        "from backfill_sync.cli import main\n"
        f"code = main({list(argv)!r})\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines())


def heavy(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if name.split(".")[0] in HEAVY or name.startswith(HEAVY))


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("--help",), id="help"),
        pytest.param(("--version",), id="version"),
        pytest.param(("validate", str(EXAMPLES)), id="validate"),
    ],
)
def test_light_commands_import_no_http_diff_roundtrip_or_emulator(argv):
    modules = modules_after(*argv)
    assert heavy(modules) == []
    assert "backfill_sync.cli.plan_cmd" not in modules


def test_help_and_version_import_no_command():
    for argv in (("--help",), ("--version",)):
        assert not {name for name in modules_after(*argv) if name.endswith("_cmd")}


def test_help_and_version_import_nothing_of_the_core():
    """They print text that is already in the CLI module: the models (20 ms to import here) and how
    errors are reported wait until a command runs."""
    for argv in (("--help",), ("--version",)):
        modules = modules_after(*argv)
        assert not {"backfill_sync.models", "backfill_sync.cli.output", "backfill_sync.problems"} & modules


def test_the_heavy_check_itself_sees_a_heavy_command():
    assert "httpx" in heavy(modules_after("plan", "--help"))


@pytest.mark.parametrize("entry", COMMANDS, ids=lambda entry: entry.name)
def test_each_listed_summary_is_the_first_sentence_of_the_commands_own_help(entry):
    command = entry.load()
    assert command.name == entry.name
    stand_in = click.Command(entry.name, help=entry.summary)
    for limit in range(20, 200):
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit)


def test_the_group_help_lists_every_command_once(capsys):
    assert main(["--help"]) == 0
    listed = capsys.readouterr().out.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed] == sorted(entry.name for entry in COMMANDS)
    assert "  validate  Check backfill manifests offline: YAML, schema, and rules..." in listed


def test_a_command_runs_after_the_list_was_shown(capsys):
    assert main(["--help"]) == 0
    assert main(["schema"]) == 0
    assert '"$schema"' in capsys.readouterr().out
    assert cli.get_command(click.Context(cli), "no-such-command") is None


def test_ctrl_c_before_the_cli_is_even_imported_is_one_line_and_130(monkeypatch, capsys):
    """The console script imports the CLI inside its own guard: a SIGINT that lands in an import (or
    anywhere click does not see it) still ends with one line and 130, not a traceback."""
    import backfill_sync.cli as cli_module
    from backfill_sync import entry

    def interrupted() -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "main", interrupted)
    with pytest.raises(SystemExit) as exited:
        entry.run()
    assert exited.value.code == 130
    assert capsys.readouterr().err == "Interrupted (Ctrl-C).\n"
