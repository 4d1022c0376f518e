"""The ready-made CI files: valid for their platforms (offline schemas), and every command in them works.

The commands are read out of the files themselves and run, with the same flags, against the emulator on a
copy of examples/backfills, in the order a pull request and then its merge would run them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from backfill_sync.cli import cli
from backfill_sync.render import MARKDOWN_MARKER
from tests.ci_commands import (
    Command,
    extract_commands,
    github_scripts,
    gitlab_scripts,
    job_environment,
    load_yaml,
)
from tests.examples import EXAMPLE_CI, OWNER_EMAIL, OWNER_PASSWORD, ROOT, copy_examples, examples_emulator

GITHUB_WORKFLOW = EXAMPLE_CI / "github-actions.yml"
GITLAB_PIPELINE = EXAMPLE_CI / "gitlab-ci.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
OWN_CONFIG = ROOT / ".pre-commit-config.yaml"
BIN = Path(sys.executable).parent
EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


# -- the files are valid for their platforms -----------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        pytest.param("vendor.github-workflows", GITHUB_WORKFLOW, id="github-actions"),
        pytest.param("vendor.gitlab-ci", GITLAB_PIPELINE, id="gitlab-ci"),
    ],
)
def test_the_files_match_their_platforms_schema(schema: str, path: Path):
    checked = check_jsonschema(schema, path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("schema", "path", "breakage"),
    [
        pytest.param("vendor.github-workflows", GITHUB_WORKFLOW, ("runs-on:", "runs_on:"), id="github"),
        pytest.param("vendor.gitlab-ci", GITLAB_PIPELINE, ("  script:", "  scripts:"), id="gitlab"),
    ],
)
def test_the_schema_check_catches_a_broken_file(tmp_path, schema: str, path: Path, breakage: tuple[str, str]):
    broken = tmp_path / path.name
    broken.write_text(path.read_text(encoding="utf-8").replace(*breakage), encoding="utf-8")
    assert check_jsonschema(schema, broken).returncode != 0


def test_github_workflow_is_locked_down():
    workflow = load_yaml(GITHUB_WORKFLOW)
    assert workflow["permissions"] == {"contents": "read"}
    uses = {
        step["uses"].split("@")[0]
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if "uses" in step
    }
    assert uses <= {
        "actions/checkout",
        "actions/setup-python",
        "actions/upload-artifact",
        "actions/download-artifact",
        "actions/github-script",
    }
    apply_job = workflow["jobs"]["apply"]
    assert apply_job["environment"] and "permissions" not in apply_job
    assert workflow["concurrency"]["group"]
    for text in (GITHUB_WORKFLOW.read_text(encoding="utf-8"), GITLAB_PIPELINE.read_text(encoding="utf-8")):
        assert "|| true" not in text, "exit codes must not be swallowed"
        assert MARKDOWN_MARKER in text, "the comment is found by the plan's marker"


# -- pre-commit: the manifest offered to other repositories, and this repository's own config ----------

# pre-commit's manifest fields (pre_commit/clientlib.py, MANIFEST_HOOK_DICT).
HOOK_REQUIRED = {"id", "name", "entry", "language"}
HOOK_OPTIONAL = {
    "alias", "files", "exclude", "types", "types_or", "exclude_types", "additional_dependencies", "args",
    "always_run", "fail_fast", "pass_filenames", "description", "language_version", "log_file",
    "minimum_pre_commit_version", "require_serial", "stages", "verbose",
}  # fmt: skip


def test_pre_commit_hooks_have_pre_commits_manifest_shape():
    hooks = load_yaml(HOOKS)
    assert isinstance(hooks, list)
    assert {hook["id"] for hook in hooks} == {
        "backfill-sync-validate",
        "backfill-sync-fmt",
        "backfill-sync-fmt-fix",
    }
    for hook in hooks:
        assert set(hook) >= HOOK_REQUIRED, hook
        assert set(hook) <= HOOK_REQUIRED | HOOK_OPTIONAL, hook
        assert hook["language"] == "python"
        assert hook["pass_filenames"] is True
        assert all(isinstance(hook[key], str) for key in ("id", "name", "entry", "files"))
        files = re.compile(hook["files"])
        assert files.search("backfills/daily_sales.yaml") and files.search("backfills/x.yml")
        assert not files.search("README.md") and not files.search("src/backfills.py")


def test_own_pre_commit_config_has_the_house_checks():
    config = load_yaml(OWN_CONFIG)
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    for repo in config["repos"]:
        assert set(repo) <= {"repo", "rev", "hooks"}
    for hook in hooks:
        assert HOOK_REQUIRED <= set(hook) <= HOOK_REQUIRED | HOOK_OPTIONAL, hook
    entries = " ; ".join(hook["entry"] for hook in hooks)
    for tool in ("ruff format", "ruff check", "mypy", "backfill-sync validate examples/backfills"):
        assert tool in entries


def test_own_pre_commit_validate_hook_passes_on_the_examples():
    (hook,) = [
        hook for hook in load_yaml(OWN_CONFIG)["repos"][0]["hooks"] if hook["id"] == "validate-examples"
    ]
    program, *args = hook["entry"].split()
    ran = subprocess.run(
        [str(BIN / Path(program).name), *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert ran.returncode == EXIT_OK, ran.stdout + ran.stderr


def hook_commands(hook_id: str) -> list[str]:
    (hook,) = [hook for hook in load_yaml(HOOKS) if hook["id"] == hook_id]
    return [str(part) for part in hook["entry"].split()]


def test_validate_hook_runs_on_the_files_pre_commit_passes(tmp_path):
    folder = copy_examples(tmp_path / "backfills")
    program, *args = hook_commands("backfill-sync-validate")
    files = sorted(str(path.relative_to(tmp_path)) for path in folder.iterdir())
    ran = run_program(program, [*args, *files], cwd=tmp_path, env={})
    assert ran.returncode == EXIT_OK, ran.stdout + ran.stderr
    assert "4 manifests valid" in ran.stdout


def test_fmt_hook_runs_on_the_files_pre_commit_passes(tmp_path):
    """Needs `backfill-sync fmt` (issue 5, part 2)."""
    folder = copy_examples(tmp_path / "backfills")
    program, *args = hook_commands("backfill-sync-fmt")
    files = sorted(str(path.relative_to(tmp_path)) for path in folder.iterdir())
    ran = run_program(program, [*args, *files], cwd=tmp_path, env={})
    assert ran.returncode == EXIT_OK, ran.stdout + ran.stderr


def test_fmt_fix_hook_rewrites_the_files_pre_commit_passes(tmp_path):
    folder = copy_examples(tmp_path / "backfills")
    program, *args = hook_commands("backfill-sync-fmt-fix")
    assert "--check" not in args
    files = sorted(str(path.relative_to(tmp_path)) for path in folder.iterdir())
    untidy = folder / Path(files[0]).name
    untidy.write_text(untidy.read_text(encoding="utf-8").replace("\n", "\n\n"), encoding="utf-8")
    ran = run_program(program, [*args, *files], cwd=tmp_path, env={})
    assert ran.returncode == EXIT_OK, ran.stdout + ran.stderr
    assert ran.stdout == f"reformatted {files[0]}\n"
    check = hook_commands("backfill-sync-fmt")
    assert run_program(check[0], [*check[1:], *files], cwd=tmp_path, env={}).returncode == EXIT_OK


# -- every backfill-sync command in the CI files runs, with the exit code the file expects -------------


def run_program(
    program: str, args: list[str], *, cwd: Path, env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    assert program == "backfill-sync"
    return subprocess.run(
        [str(BIN / program), *args],
        cwd=cwd,
        env={**clean_environment(), **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def clean_environment() -> dict[str, str]:
    """The test's environment without anything that would steer backfill-sync from outside."""
    dropped = ("MAGE_", "GITHUB_", "GITLAB_", "CI_")
    return {name: value for name, value in os.environ.items() if not name.startswith(dropped)}


class Scenario:
    """A pull request, then its merge: runs commands and says which exit code each must give."""

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.applied = False

    def expected_exit(self, command: Command) -> int:
        if command.subcommand == "plan" and "--detailed-exitcode" in command.args:
            return EXIT_OK if self.applied else EXIT_CHANGES
        return EXIT_OK

    def run(self, command: Command, job_env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
        ran = run_program("backfill-sync", list(command.args), cwd=self.workdir, env={**self.env, **job_env})
        expected = self.expected_exit(command)
        assert ran.returncode == expected, f"{command.args}: exit {ran.returncode}\n{ran.stdout}{ran.stderr}"
        if command.stdout_to:
            (self.workdir / command.stdout_to).write_text(ran.stdout, encoding="utf-8")
        if command.subcommand == "apply":
            self.applied = True
        return ran


@pytest.fixture
def mage_url() -> Iterator[str]:
    with examples_emulator() as url:
        yield url


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A checkout as CI sees it: the manifests in backfills/ at the top."""
    work = tmp_path / "checkout"
    work.mkdir()
    copy_examples(work / "backfills")
    return work


def github_commands_by_job() -> list[tuple[str, Mapping[str, Any], list[Command]]]:
    workflow = load_yaml(GITHUB_WORKFLOW)
    return [
        (name, job, extract_commands(github_scripts({"jobs": {name: job}}), {}))
        for name, job in workflow["jobs"].items()
    ]


def test_github_commands_run_as_a_pull_request_then_its_merge(mage_url, workdir, tmp_path):
    summary = tmp_path / "step_summary.md"
    secrets = {"MAGE_URL": mage_url, "MAGE_EMAIL": OWNER_EMAIL, "MAGE_PASSWORD": OWNER_PASSWORD}
    scenario = Scenario(workdir, {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    # Jobs in file order are validate, plan, apply: a merge runs all three, a pull request the first two.
    steps = [
        (command, job_environment(job, secrets))
        for _, job, commands in github_commands_by_job()
        for command in commands
        if command.subcommand != "fmt"  # test_fmt_commands_in_ci_files
    ]
    assert [command.subcommand for command, _ in steps] == ["validate", "plan", "apply", "plan"]
    for command, env in steps:
        scenario.run(command, env)
    assert (workdir / "plan.md").read_text(encoding="utf-8").startswith(MARKDOWN_MARKER + "\n")
    assert summary.read_text(encoding="utf-8").count(MARKDOWN_MARKER) == 2, "both plans reached the summary"
    # After the merge, the pull request's plan command has nothing left to do.
    scenario.run(*steps[1])


def test_gitlab_commands_run_as_a_merge_request_then_its_merge(mage_url, workdir):
    pipeline = load_yaml(GITLAB_PIPELINE)
    variables = {"MAGE_URL": mage_url, "MAGE_EMAIL": OWNER_EMAIL, "MAGE_PASSWORD": OWNER_PASSWORD}
    commands = [
        command for command in extract_commands(gitlab_scripts(pipeline), {}) if command.subcommand != "fmt"
    ]
    assert [command.subcommand for command in commands] == ["validate", "plan", "apply", "plan"]
    scenario = Scenario(workdir, variables)
    for command in commands:
        scenario.run(command, {})
    assert (workdir / "plan.md").read_text(encoding="utf-8").startswith(MARKDOWN_MARKER + "\n")
    scenario.run(commands[1], {})


def test_every_ci_command_is_one_the_cli_knows():
    github = [c for _, _, commands in github_commands_by_job() for c in commands]
    gitlab = extract_commands(gitlab_scripts(load_yaml(GITLAB_PIPELINE)), {})
    hooks = [hook_commands(hook["id"])[1] for hook in load_yaml(HOOKS)]
    used = {command.subcommand for command in [*github, *gitlab]} | set(hooks)
    assert {"validate", "plan", "apply", "fmt"} <= used
    # fmt is checked by test_fmt_commands_in_ci_files (it comes with issue 5, part 2).
    assert used - {"fmt"} <= set(cli.commands)


def fmt_commands() -> list[Any]:
    github = [c for _, _, commands in github_commands_by_job() for c in commands]
    gitlab = extract_commands(gitlab_scripts(load_yaml(GITLAB_PIPELINE)), {})
    return [
        pytest.param(command, id=f"{platform}: {' '.join(command.args)}")
        for platform, commands in (("github", github), ("gitlab", gitlab))
        for command in commands
        if command.subcommand == "fmt"
    ]


@pytest.mark.parametrize("command", fmt_commands())
def test_fmt_commands_in_ci_files(workdir, command: Command):
    """Needs `backfill-sync fmt` (issue 5, part 2): `fmt --check` passes on the example manifests."""
    ran = run_program("backfill-sync", list(command.args), cwd=workdir, env={})
    assert ran.returncode == EXIT_OK, ran.stdout + ran.stderr


# -- the shell around plan: exit 2 (changes) passes, exit 1 fails the job ------------------------------


def plan_script(platform: str) -> str:
    if platform == "github":
        steps = load_yaml(GITHUB_WORKFLOW)["jobs"]["plan"]["steps"]
        (run,) = [step["run"] for step in steps if step.get("id") == "plan"]
        return str(run)
    return "\n".join(load_yaml(GITLAB_PIPELINE)["plan"]["script"])


@pytest.mark.parametrize("platform", ["github", "gitlab"])
@pytest.mark.parametrize(
    ("plan_exit", "job_exit", "changes"),
    [
        pytest.param(0, 0, "false", id="no-changes"),
        pytest.param(2, 0, "true", id="changes"),
        pytest.param(1, 1, None, id="error"),
    ],
)
def test_plan_step_passes_on_changes_and_fails_on_errors(
    tmp_path, platform: str, plan_exit: int, job_exit: int, changes: str | None
):
    stub = tmp_path / "bin" / "backfill-sync"
    stub.parent.mkdir()
    stub.write_text(f"#!/bin/sh\necho '{MARKDOWN_MARKER}'\nexit {plan_exit}\n", encoding="utf-8")
    stub.chmod(0o755)
    output = tmp_path / "github_output"
    output.touch()
    env = {"PATH": f"{stub.parent}:{os.environ['PATH']}", "GITHUB_OUTPUT": str(output)}
    # GitHub runs `run:` with `bash -e`; GitLab's runner runs the script lines in one `bash -e -o pipefail`.
    shell = ["bash", "-e", "-o", "pipefail", "-c", plan_script(platform)]
    ran = subprocess.run(shell, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert ran.returncode == job_exit, ran.stdout + ran.stderr
    if platform == "github":
        assert output.read_text(encoding="utf-8") == (f"changes={changes}\n" if changes else "")
    assert (tmp_path / "plan.md").read_text(encoding="utf-8") == MARKDOWN_MARKER + "\n"
