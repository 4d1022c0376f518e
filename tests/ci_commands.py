"""Find the backfill-sync commands that the CI example files and pre-commit hooks run, as argument lists."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

PROGRAM = "backfill-sync"
_SHELL_OPERATORS = frozenset({">", ">>", "<", "|", "||", "&&", ";", "&", "2>", "2>&1"})
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")
_SECRET = re.compile(r"\bsecrets\.(\w+)")
_EXPRESSION = re.compile(r"\$\{\{\s*(secrets|vars)\.(\w+)\s*\}\}")


@dataclass(frozen=True)
class Command:
    """One `backfill-sync ...` invocation: its arguments and where its stdout is redirected, if anywhere."""

    args: tuple[str, ...]
    stdout_to: str | None

    @property
    def subcommand(self) -> str:
        return self.args[0]


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def github_scripts(workflow: Mapping[str, Any]) -> Iterator[str]:
    """Every `run:` of every job's steps, in file order."""
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            if "run" in step:
                yield step["run"]


def gitlab_scripts(pipeline: Mapping[str, Any]) -> Iterator[str]:
    """Every line of every job's before_script/script/after_script, in file order (default: first)."""
    jobs = [pipeline.get("default", {}), *pipeline.values()]
    for job in jobs:
        if not isinstance(job, Mapping):
            continue
        for key in ("before_script", "script", "after_script"):
            yield from job.get(key, [])


def extract_commands(scripts: Iterator[str], variables: Mapping[str, str]) -> list[Command]:
    """Shell lines that start with `backfill-sync `, cut at the first shell operator, variables filled in."""
    commands = []
    for script in scripts:
        for line in script.splitlines():
            if line.strip().startswith(PROGRAM + " "):
                commands.append(parse_command(line.strip(), variables))
    return commands


def parse_command(line: str, variables: Mapping[str, str]) -> Command:
    lexer = shlex.shlex(substitute(line, variables), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    assert tokens[0] == PROGRAM, line
    cut = next((i for i, token in enumerate(tokens) if token in _SHELL_OPERATORS), len(tokens))
    stdout_to = tokens[cut + 1] if cut + 1 < len(tokens) and tokens[cut] == ">" else None
    return Command(args=tuple(tokens[1:cut]), stdout_to=stdout_to)


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """Fill in $VAR and ${VAR}; a variable the test did not give a value for is an error, not ""."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"the test has no value for ${name} in {text!r}")
        return variables[name]

    return _VARIABLE.sub(value, text)


def job_environment(job: Mapping[str, Any], settings: Mapping[str, str]) -> dict[str, str]:
    """A GitHub job's `env:` with `${{ secrets.X }}` and `${{ vars.X }}` filled in from `settings`.

    A secret or variable not set is "", as on GitHub.
    """
    return {
        name: _EXPRESSION.sub(lambda match: settings.get(match.group(2), ""), str(value))
        for name, value in job.get("env", {}).items()
    }


def gitlab_job_variables(job: Mapping[str, Any], project_variables: Mapping[str, str]) -> dict[str, str]:
    """The project's CI/CD variables plus a GitLab job's `variables:` expanded from them.

    A variable not set expands to "", as the runner does; a project variable beats the job's own.
    """
    own = {
        name: _VARIABLE.sub(lambda match: project_variables.get(match.group(1) or match.group(2), ""), value)
        for name, value in job.get("variables", {}).items()
    }
    return {**own, **project_variables}


def strings_in(node: Any) -> Iterator[str]:
    """Every string in a loaded YAML node, keys included."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from strings_in(key)
            yield from strings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_in(item)


def secrets_referenced(node: Any) -> set[str]:
    """Names X of every `secrets.X` in any expression anywhere in a GitHub workflow node."""
    return {name for text in strings_in(node) for name in _SECRET.findall(text)}
