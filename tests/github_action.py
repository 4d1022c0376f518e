"""Run action.yml's steps, and the example workflow's jobs that use it, the way a GitHub runner would.

Only what the files need is understood: `${{ ... }}` expressions are looked up in a table the test
gives (an unknown one is an error, never ""), `if:` conditions may compare inputs with `==`/`!=` joined
by `&&`, `||` and parentheses, `run:` steps run with `bash -e -o pipefail` as GitHub's `shell: bash` does,
and the `uses:` steps are played by stand-ins: setup-python does nothing, upload-artifact and
download-artifact copy files through a folder, checkout is the test's work folder.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.ci_commands import Command, load_yaml, parse_command
from tests.examples import ROOT

ACTION = ROOT / "action.yml"
ACTION_USES = "your-org/backfill-sync"  # how the example workflow names the action
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_CONDITION_WORDS = re.compile(r"(inputs|steps)((?:\.[\w-]+)+)|&&|\|\||==|!=|'[^']*'|[()]|\s+")


def expand(text: str, values: Mapping[str, str]) -> str:
    """Fill in every `${{ expression }}` from `values`, keyed by the expression's text."""

    def value(match: re.Match[str]) -> str:
        expression = " ".join(match.group(1).split())
        if expression not in values:
            raise KeyError(f"the test has no value for ${{{{ {expression} }}}} in {text!r}")
        return values[expression]

    return _EXPRESSION.sub(value, text)


def holds(condition: str, inputs: Mapping[str, str], steps: Mapping[str, str] | None = None) -> bool:
    """An `if:`: inputs (by name) or step outputs (`steps.ID.outputs.NAME`) compared with string literals,
    joined by &&, || and parentheses. A step output never set is "", as on GitHub."""
    python = []
    position = 0
    for match in _CONDITION_WORDS.finditer(condition):
        assert match.start() == position, f"cannot read {condition!r} at {condition[position:]!r}"
        position = match.end()
        word = match.group(0)
        if match.group(1) == "inputs":
            python.append(repr(inputs[match.group(2).removeprefix(".")]))
        elif match.group(1) == "steps":
            python.append(repr((steps or {}).get(word, "")))
        else:
            python.append({"&&": " and ", "||": " or "}.get(word, word))
    assert position == len(condition), f"cannot read {condition!r}"
    result = eval("".join(python), {"__builtins__": {}}, {})  # only literals and comparisons are left
    assert isinstance(result, bool)
    return result


@dataclass
class Runner:
    """One job's runner: its work folder, environment, artifact store and the step outputs so far."""

    workdir: Path
    artifacts: Path
    env: dict[str, str]
    github_token: str = "ghs-test-token"
    stub_install: bool = True
    step_outputs: dict[str, str] = field(default_factory=dict)  # `steps.ID.outputs.NAME` of the action
    outputs: dict[str, str] = field(default_factory=dict)  # `steps.ID.outputs.NAME` of the job
    logs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)

    def run_action(self, given: Mapping[str, str]) -> tuple[int, dict[str, str]]:
        """Run action.yml with these inputs: the exit code of the first failing step (else 0), and the
        action's outputs."""
        action = load_yaml(ACTION)
        unknown = set(given) - set(action["inputs"])
        assert not unknown, f"action.yml has no input {unknown}"
        inputs = {
            name: str(given.get(name, spec.get("default", ""))) for name, spec in action["inputs"].items()
        }
        inputs = {name: expand(value, {"github.token": self.github_token}) for name, value in inputs.items()}
        missing = [
            name for name, spec in action["inputs"].items() if spec.get("required") and not inputs[name]
        ]
        assert not missing, f"required inputs not given: {missing}"
        values = {f"inputs.{name}": value for name, value in inputs.items()}
        self.step_outputs = {}
        code = 0
        for step in action["runs"]["steps"]:
            if "if" in step and not holds(step["if"], inputs):
                continue
            code = self._step(step, values)
            if code != 0:
                break
        outputs = {
            name: expand(
                spec["value"], {key: self.step_outputs.get(key, "") for key in _steps_in(spec["value"])}
            )
            for name, spec in action.get("outputs", {}).items()
        }
        return code, outputs

    def _step(self, step: Mapping[str, Any], values: Mapping[str, str]) -> int:
        if "uses" in step:
            with_ = {name: expand(str(value), values) for name, value in step.get("with", {}).items()}
            self._stand_in(step["uses"].split("@")[0], with_)
            return 0
        assert step["shell"] == "bash"
        env = {**self.env, **{name: expand(str(v), values) for name, v in step.get("env", {}).items()}}
        output_file = self.workdir.parent / f"{self.workdir.name}-output"
        output_file.write_text("", encoding="utf-8")
        env |= {"GITHUB_ACTION_PATH": str(ROOT), "GITHUB_OUTPUT": str(output_file)}
        if self.stub_install and "install.sh" in step["run"]:
            env["PATH"] = f"{self._pip_stub()}{os.pathsep}{env['PATH']}"
        ran = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", expand(step["run"], values)],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        self.logs.append(ran)
        for line in output_file.read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition("=")
            self.step_outputs[f"steps.{step.get('id', '')}.outputs.{name}"] = value
        return ran.returncode

    def _stand_in(self, uses: str, with_: Mapping[str, str]) -> None:
        if uses == "actions/setup-python":
            return
        store = self.artifacts / with_["name"]
        if uses == "actions/upload-artifact":
            store.mkdir(parents=True, exist_ok=True)
            for name in with_["path"].split():
                shutil.copy(self.workdir / name, store / name)
        elif uses == "actions/download-artifact":
            assert store.is_dir(), f"no artifact {with_['name']!r} was uploaded"
            for path in store.iterdir():
                shutil.copy(path, self.workdir / path.name)
        else:
            raise AssertionError(f"no stand-in for {uses}")

    def _pip_stub(self) -> Path:
        """A `python` that records `-m pip install ...` instead of installing (the test's venv has it)."""
        folder = self.workdir.parent / "pip-stub"
        folder.mkdir(exist_ok=True)
        stub = folder / "python"
        stub.write_text(f'#!/bin/sh\necho "$@" >> "{folder / "installed.txt"}"\n', encoding="utf-8")
        stub.chmod(0o755)
        return folder

    def installed_requirements(self) -> list[str]:
        record = self.workdir.parent / "pip-stub" / "installed.txt"
        return record.read_text(encoding="utf-8").splitlines() if record.exists() else []


def run_job(runner: Runner, job: Mapping[str, Any], values: Mapping[str, str]) -> int:
    """A workflow job's steps: checkout is the work folder, each use of the action runs action.yml, and
    `run:` steps run in bash; the exit code of the first failing step, else 0."""
    for step in job["steps"]:
        if "if" in step and not holds(step["if"], {}, runner.outputs):
            continue
        if "run" in step:
            ran = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", expand(step["run"], values)],
                cwd=runner.workdir,
                env=runner.env,
                capture_output=True,
                text=True,
                check=False,
            )
            runner.logs.append(ran)
            if ran.returncode != 0:
                return ran.returncode
            continue
        uses = step["uses"].split("@")[0]
        if uses == "actions/checkout":
            continue
        assert uses == ACTION_USES, f"the example workflows use only checkout and the action, not {uses}"
        given = {name: expand(str(v), values) for name, v in step.get("with", {}).items()}
        code, outputs = runner.run_action(given)
        for name, value in outputs.items():
            runner.outputs[f"steps.{step.get('id', '')}.outputs.{name}"] = value
        if code != 0:
            return code
    return 0


def _steps_in(text: str) -> list[str]:
    return [" ".join(match.split()) for match in _EXPRESSION.findall(text)]


RUN_SCRIPT = ROOT / "scripts" / "github-action" / "run.sh"


def action_commands(with_: Mapping[str, str]) -> list[Command]:
    """The backfill-sync commands run.sh runs for an action step's inputs, with its args and paths."""
    action = load_yaml(ACTION)["inputs"]
    command = with_["command"]
    paths = with_.get("paths", action["paths"]["default"]).split()
    args = with_.get("args", action["args"]["default"]).split()
    branch = re.search(rf"^  {command}\)\n(.*?)^    ;;", RUN_SCRIPT.read_text(encoding="utf-8"), re.M | re.S)
    if branch is None:
        return []
    lines = [
        line.strip() for line in branch.group(1).splitlines() if line.strip().startswith("backfill-sync ")
    ]
    spliced = [
        line.replace('"${extra[@]}"', shlex.join(args)).replace('"${paths[@]}"', shlex.join(paths))
        for line in lines
    ]
    return [parse_command(line, {}) for line in spliced]
