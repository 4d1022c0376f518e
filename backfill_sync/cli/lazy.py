"""A click group that imports a command's module only when that command runs or shows its own help."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """A command known by name before its module is imported."""

    name: str
    target: str  # "module:attribute", the module under backfill_sync.cli
    summary: str  # the first sentence of the command's help: what the group's --help lists

    def load(self) -> click.Command:
        module, _, attribute = self.target.partition(":")
        command = getattr(importlib.import_module(f"backfill_sync.cli.{module}"), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"backfill_sync.cli.{self.target} is not a click command")
        return command


class LazyGroup(click.Group):
    """`--help`, `--version` and each command pay only for the imports they use."""

    def __init__(self, *args: Any, lazy_commands: Sequence[LazyCommand] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = {command.name: command for command in lazy_commands}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.add_command(self.lazy_commands[cmd_name].load(), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own version asks every command for its short help, which imports them all.
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, self._short_help(name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _short_help(self, name: str, limit: int) -> str:
        # A stand-in holding only the summary shortens it exactly as click shortens the real help.
        command = self.commands.get(name) or click.Command(name, help=self.lazy_commands[name].summary)
        return command.get_short_help_str(limit)
