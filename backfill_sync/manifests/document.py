"""A parsed YAML manifest: its plain data plus the line and column of every key and value."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from backfill_sync.models import SourceLocation, Violation

# A field path: mapping keys and sequence indexes from the top, e.g. ("backfills", 0, "name").
FieldPath = tuple[str | int, ...]
# 1-based (line, column).
Position = tuple[int, int]

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Document:
    """One manifest file after YAML parsing; `data` holds only JSON-like values (dict, list, str, ...)."""

    file: str
    data: Any
    values: dict[FieldPath, Position] = field(default_factory=dict)
    keys: dict[FieldPath, Position] = field(default_factory=dict)
    # Problems the parser found that leave the data well defined (values YAML readers disagree on):
    # reported with the schema's, instead of hiding them.
    parse_problems: tuple[Violation, ...] = ()

    def value_position(self, path: FieldPath) -> Position:
        """Where the value at `path` starts; a path that does not exist points at its nearest ancestor."""
        for depth in range(len(path), -1, -1):
            found = self.values.get(path[:depth])
            if found is not None:
                return found
        return (1, 1)

    def key_position(self, path: FieldPath) -> Position:
        """Where the key of the value at `path` is written (its value's position for sequence items)."""
        return self.keys.get(path) or self.value_position(path)

    def violation(self, path: FieldPath, message: str, *, at_key: bool = False) -> Violation:
        line, col = self.key_position(path) if at_key else self.value_position(path)
        return Violation(self.file, line, col, format_path(path), message)

    def source(self, path: FieldPath) -> SourceLocation:
        line, col = self.value_position(path)
        return SourceLocation(self.file, line, col)


def format_path(path: FieldPath) -> str:
    """`("backfills", 0, "name")` -> `backfills[0].name`; odd keys are quoted: `variables["a.b"]`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{_quote(part)}]"
    return text


def _quote(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
