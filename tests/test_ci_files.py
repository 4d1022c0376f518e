"""The ready-made CI files: valid for their platforms (offline schemas), and every command in them works.

The commands are read out of the files themselves and run, with the same flags, against the emulator on a
copy of examples/backfills, in the order a pull request and then its merge would run them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
import pytest

from backfill_sync.cli import cli
from backfill_sync.client import MageClient
from backfill_sync.models import MageConnection
from backfill_sync.render import MARKDOWN_MARKER
from tests.ci_commands import (
    Command,
    extract_commands,
    github_scripts,
    gitlab_job_variables,
    gitlab_scripts,
    load_yaml,
    secrets_referenced,
    strings_in,
)
from tests.contract.servers import call_json
from tests.examples import (
    EXAMPLE_CI,
    OWNER_EMAIL,
    OWNER_PASSWORD,
    ROOT,
    VIEWER_EMAIL,
    VIEWER_PASSWORD,
    copy_examples,
    examples_emulator,
)
from tests.github_action import ACTION, ACTION_USES, action_commands, expand
from tests.loopback import serving
from tests.test_codequality import check_gitlab_report

GITHUB_WORKFLOW = EXAMPLE_CI / "github-actions.yml"
GITLAB_PIPELINE = EXAMPLE_CI / "gitlab-ci.yml"
GITHUB_DRIFT = EXAMPLE_CI / "github-drift.yml"
GITHUB_WAIT = EXAMPLE_CI / "github-wait.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
COMMENT_SCRIPT = ROOT / "scripts" / "github-action" / "comment.py"
ACTION_SCRIPTS = sorted((ROOT / "scripts" / "github-action").glob("*.sh"))
OWN_CONFIG = ROOT / ".pre-commit-config.yaml"
BIN = Path(sys.executable).parent
EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2
# Shell variables the CI files set themselves before a backfill-sync line: their value on an ordinary run.
SHELL_DEFAULTS = {"RESTART_FLAG": ""}


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
        pytest.param("vendor.github-workflows", GITHUB_DRIFT, id="github-drift"),
        pytest.param("vendor.github-workflows", GITHUB_WAIT, id="github-wait"),
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
    assert uses == {"actions/checkout", ACTION_USES}, "GitHub's checkout, and backfill-sync's own action"
    apply_job = workflow["jobs"]["apply"]
    assert apply_job["environment"] and "permissions" not in apply_job
    assert workflow["concurrency"]["group"]
    for text in (GITHUB_WORKFLOW.read_text(encoding="utf-8"), GITLAB_PIPELINE.read_text(encoding="utf-8")):
        assert "|| true" not in text, "exit codes must not be swallowed"
    for path in (GITLAB_PIPELINE, COMMENT_SCRIPT):
        assert MARKDOWN_MARKER in path.read_text(encoding="utf-8"), (
            "the comment is found by the plan's marker"
        )


def test_the_wait_is_read_only_and_holds_no_lock_apply_needs():
    """A two-hour wait must not hold up the next plan or apply: no concurrency group or resource_group,
    and only the read-only (plan) credentials."""
    workflow = load_yaml(GITHUB_WAIT)
    assert "concurrency" not in workflow and workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    assert "concurrency" not in job
    secrets = set(re.findall(r"secrets\.(\w+)", GITHUB_WAIT.read_text(encoding="utf-8")))
    assert secrets <= PLAN_SECRETS
    (step,) = [step for step in job["steps"] if step.get("uses", "").startswith(ACTION_USES)]
    assert step["with"]["command"] == "wait"
    # YAML 1.1 (PyYAML) reads the key `on` as true.
    assert workflow[True]["workflow_run"]["workflows"] == [load_yaml(GITHUB_WORKFLOW)["name"]]
    gitlab_wait = load_yaml(GITLAB_PIPELINE)["wait"]
    assert "resource_group" not in gitlab_wait and gitlab_wait["needs"] == ["apply"]
    assert set(re.findall(r"\$(\w+)", str(gitlab_wait["variables"]))) <= {
        "MAGE_PLAN_TOKEN",
        "MAGE_PLAN_EMAIL",
        "MAGE_PLAN_PASSWORD",
    }


# -- who holds which credential, and when the writing job runs (read off the files) --------------------

WRITE_SECRETS = {"MAGE_TOKEN", "MAGE_EMAIL", "MAGE_PASSWORD"}
PLAN_SECRETS = {"MAGE_PLAN_TOKEN", "MAGE_PLAN_EMAIL", "MAGE_PLAN_PASSWORD", "MAGE_API_KEY"}
GITLAB_WRITE_VARIABLES = ("MAGE_APPLY_TOKEN", "MAGE_APPLY_EMAIL", "MAGE_APPLY_PASSWORD")
GITHUB_MAIN = "github.ref == 'refs/heads/main'"


def top_level_conjuncts(condition: str) -> list[str]:
    """`a && (b || c) && d` -> ["a", "(b || c)", "d"]: each must hold for the whole to hold."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(condition):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and condition.startswith("&&", i):
            parts.append(condition[start:i].strip())
            start = i + 2
    parts.append(condition[start:].strip())
    return [" ".join(part.split()) for part in parts]


def test_top_level_conjuncts_splits_only_outside_parentheses():
    assert top_level_conjuncts("a &&\n (b || c) && d") == ["a", "(b || c)", "d"]
    assert top_level_conjuncts("(a || b && e) && d") == ["(a || b && e)", "d"]
    assert top_level_conjuncts("a || b") == ["a || b"]


def test_github_plan_and_comment_jobs_hold_no_write_credentials():
    jobs = load_yaml(GITHUB_WORKFLOW)["jobs"]
    assert secrets_referenced(jobs["plan"]) <= PLAN_SECRETS
    assert secrets_referenced(jobs["plan"]) & {"MAGE_PLAN_TOKEN", "MAGE_PLAN_EMAIL"}, "plan has credentials"
    assert secrets_referenced(jobs["validate"]) == set()
    assert secrets_referenced(jobs["comment"]) == set()
    assert not any("MAGE_" in text for text in strings_in(jobs["comment"].get("env", {})))


def test_github_write_credentials_are_only_in_the_main_only_environment_job():
    jobs = load_yaml(GITHUB_WORKFLOW)["jobs"]
    for name, job in jobs.items():
        if secrets_referenced(job) & WRITE_SECRETS:
            assert job.get("environment") == "mage", name
            conjuncts = top_level_conjuncts(job["if"])
            assert GITHUB_MAIN in conjuncts, f"{name} must run only on main: {job['if']!r}"
            assert "pull_request" not in job["if"]
    assert secrets_referenced(jobs["apply"]) >= WRITE_SECRETS


def test_github_only_the_comment_job_may_write_to_pull_requests():
    workflow = load_yaml(GITHUB_WORKFLOW)
    writers = {
        name
        for name, job in workflow["jobs"].items()
        if "write" in job.get("permissions", workflow["permissions"]).values()
    }
    assert writers == {"comment"}
    assert workflow["jobs"]["comment"]["permissions"] == {"pull-requests": "write"}
    assert "github.event_name == 'pull_request'" in workflow["jobs"]["comment"]["if"]


def test_github_comment_job_runs_the_actions_comment_after_validate_and_plan():
    comment = load_yaml(GITHUB_WORKFLOW)["jobs"]["comment"]
    # It runs after a failed validate or plan too (to say so), but not after a cancelled run. A failed
    # validate skips plan, so needs.plan.result is not success then either.
    assert set(comment["needs"]) == {"validate", "plan"}
    assert "!cancelled()" in comment["if"]
    (step,) = comment["steps"]
    assert step["uses"].split("@")[0] == ACTION_USES
    assert step["with"] == {"command": "comment", "plan-result": "${{ needs.plan.result }}"}


def test_github_allow_restart_is_an_opt_in_of_a_run_by_hand():
    workflow = load_yaml(GITHUB_WORKFLOW)
    # PyYAML reads the key `on` as True (YAML 1.1).
    triggers = workflow[True]
    restart = triggers["workflow_dispatch"]["inputs"]["allow_restart"]
    assert restart["type"] == "boolean" and restart["default"] is False
    (plan_step,) = [step for step in workflow["jobs"]["plan"]["steps"] if step.get("id") == "plan"]
    assert "${{ inputs.allow_restart && '--allow-restart' || '' }}" in plan_step["with"]["args"]
    # apply takes restarts from the saved plan, never a flag of its own.
    assert all("--allow-restart" not in c.args for _, _, cs in github_commands_by_job() for c in cs)


def test_the_workflows_set_the_run_budget_for_plan_and_apply():
    github = [c for _, _, cs in github_commands_by_job() for c in cs]
    gitlab = [c for _, _, cs in gitlab_commands_by_job() for c in cs]
    for commands in (github, gitlab):
        budgeted = [c for c in commands if "--max-total-runs" in c.args]
        assert {c.subcommand for c in budgeted} == {"plan", "apply"}
        assert all(c.args[c.args.index("--max-total-runs") + 1] == "10000" for c in budgeted)


def gitlab_job_text(job: Mapping[str, Any]) -> str:
    return "\n".join(strings_in(job))


def test_gitlab_write_variables_are_used_only_by_apply_on_the_default_branch():
    pipeline = load_yaml(GITLAB_PIPELINE)
    users = {
        name
        for name, job in pipeline.items()
        if isinstance(job, Mapping) and any(var in gitlab_job_text(job) for var in GITLAB_WRITE_VARIABLES)
    }
    assert users == {"apply"}
    apply_job = pipeline["apply"]
    assert apply_job["variables"] == {
        "MAGE_TOKEN": "$MAGE_APPLY_TOKEN",
        "MAGE_EMAIL": "$MAGE_APPLY_EMAIL",
        "MAGE_PASSWORD": "$MAGE_APPLY_PASSWORD",
    }
    # Every rule that can add the job requires the default branch (no rule without `if`).
    adding = [rule for rule in apply_job["rules"] if rule.get("when") != "never"]
    assert adding and all("$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in rule["if"] for rule in adding)
    assert pipeline["plan"]["variables"] == {
        "MAGE_TOKEN": "$MAGE_PLAN_TOKEN",
        "MAGE_EMAIL": "$MAGE_PLAN_EMAIL",
        "MAGE_PASSWORD": "$MAGE_PLAN_PASSWORD",
    }


FORK_RULE = "$CI_MERGE_REQUEST_SOURCE_PROJECT_ID != $CI_MERGE_REQUEST_PROJECT_ID"


@pytest.mark.parametrize("job", ["plan", "plan-failed"])
def test_gitlab_fork_merge_requests_are_not_planned_or_noted(job: str):
    rules = load_yaml(GITLAB_PIPELINE)[job]["rules"]
    # GitLab takes the first rule that matches: the fork rule comes before any rule that adds the job.
    first_adding = next(i for i, rule in enumerate(rules) if rule.get("when") != "never")
    assert any(FORK_RULE in rule["if"] and rule["when"] == "never" for rule in rules[:first_adding])


def test_gitlab_failure_note_runs_only_on_a_failed_merge_request_pipeline():
    pipeline = load_yaml(GITLAB_PIPELINE)
    job = pipeline["plan-failed"]
    assert pipeline["stages"].index(job["stage"]) > pipeline["stages"].index(pipeline["plan"]["stage"])
    assert job["rules"][-1] == {"if": '$CI_PIPELINE_SOURCE == "merge_request_event"', "when": "on_failure"}
    assert job["variables"] == {"PLAN_FAILED": "true"}
    assert job["script"] == [pipeline[".write-mr-note"]]
    assert pipeline[".write-mr-note"] in pipeline["plan"]["script"]


def test_gitlab_allow_restart_is_a_manual_pipeline_variable_defaulting_to_false():
    pipeline = load_yaml(GITLAB_PIPELINE)
    assert pipeline["variables"]["ALLOW_RESTART"]["value"] == "false"
    assert set(pipeline["variables"]["ALLOW_RESTART"]["options"]) == {"false", "true"}
    assert {"if": '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH && $CI_PIPELINE_SOURCE == "web"'} in pipeline[
        "workflow"
    ]["rules"]


SECRET_NAMES = ("MAGE_TOKEN", "MAGE_PASSWORD", "MAGE_PLAN", "MAGE_APPLY", "GITLAB_TOKEN", "secrets.")


def github_side_scripts() -> list[str]:
    """Everything that runs on GitHub's side: the `run:` of every example workflow and of the action,
    and the action's own scripts."""
    workflows = [load_yaml(path) for path in sorted(EXAMPLE_CI.glob("github-*.yml"))]
    action_steps = load_yaml(ACTION)["runs"]["steps"]
    return [
        *(script for workflow in workflows for script in github_scripts(workflow)),
        *(step["run"] for step in action_steps if "run" in step),
        *(path.read_text(encoding="utf-8") for path in ACTION_SCRIPTS),
        (ROOT / "scripts" / "github-action" / "comment.py").read_text(encoding="utf-8"),
    ]


@pytest.mark.parametrize("path", [GITHUB_WORKFLOW, GITLAB_PIPELINE], ids=["github", "gitlab"])
def test_no_step_prints_a_secret_or_passes_it_as_a_flag(path: Path):
    scripts = (
        github_side_scripts()
        if path == GITHUB_WORKFLOW
        else [line for _, job, _ in gitlab_commands_by_job() for line in job["script"]]
    )
    assert len(scripts) >= (7 if path == GITHUB_WORKFLOW else 3)  # the check cannot go quietly empty
    for script in scripts:
        assert "set -x" not in script and "set -o xtrace" not in script
        for line in script.splitlines():
            if re.match(r"\s*(echo|printf|cat\b|print\()", line):
                assert not any(name in line for name in SECRET_NAMES), line
    commands = (
        [c for _, _, cs in github_commands_by_job() for c in cs]
        if path == GITHUB_WORKFLOW
        else [c for _, _, cs in gitlab_commands_by_job() for c in cs]
    )
    for command in commands:
        # Flags show in `ps` and in logs; credentials come from the environment.
        assert not {"--token", "--password", "--email", "--api-key"} & set(command.args), command.args


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
        if command.subcommand == "wait":
            # The examples' emulator runs nothing by itself: let every run of the applied plan complete.
            finish_every_run({**self.env, **job_env}["MAGE_URL"])
        ran = run_program("backfill-sync", list(command.args), cwd=self.workdir, env={**self.env, **job_env})
        expected = self.expected_exit(command)
        assert ran.returncode == expected, f"{command.args}: exit {ran.returncode}\n{ran.stdout}{ran.stderr}"
        if command.stdout_to:
            (self.workdir / command.stdout_to).write_text(ran.stdout, encoding="utf-8")
        if command.subcommand == "apply":
            self.applied = True
        return ran


def finish_every_run(url: str) -> None:
    connection = MageConnection(url=url, email=OWNER_EMAIL, password=OWNER_PASSWORD)
    with MageClient(connection) as api:
        for backfill in api.list_backfills():
            call_json("POST", f"{url}/_emulator/runs/complete", {"backfill_id": backfill.id})


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
    """Per job, the backfill-sync commands its uses of the action run (on an ordinary run)."""
    workflow = load_yaml(GITHUB_WORKFLOW)
    values = github_values(workflow)
    return [
        (
            name,
            job,
            [
                command
                for step in job["steps"]
                if step["uses"].split("@")[0] == ACTION_USES
                for command in action_commands({k: expand(str(v), values) for k, v in step["with"].items()})
            ],
        )
        for name, job in workflow["jobs"].items()
    ]


def github_values(workflow: Mapping[str, Any], *, allow_restart: bool = False) -> dict[str, str]:
    """The expressions of the example workflow's `with:`, on an ordinary run (or one allowing restarts)."""
    return {
        "env.MAX_TOTAL_RUNS": workflow["env"]["MAX_TOTAL_RUNS"],
        "inputs.allow_restart && '--allow-restart' || ''": "--allow-restart" if allow_restart else "",
        "needs.plan.result": "success",
    }


def gitlab_commands_by_job() -> list[tuple[str, Mapping[str, Any], list[Command]]]:
    pipeline = load_yaml(GITLAB_PIPELINE)
    plain = {name: value for name, value in pipeline["variables"].items() if isinstance(value, str)}

    def own(job: Mapping[str, Any]) -> dict[str, str]:
        """A job's literal variables (those not taken from the project's CI/CD variables)."""
        found = job.get("variables", {})
        return {name: value for name, value in found.items() if isinstance(value, str) and "$" not in value}

    return [
        (name, job, extract_commands(gitlab_scripts({name: job}), {**plain, **own(job), **SHELL_DEFAULTS}))
        for name, job in pipeline.items()
        if isinstance(job, Mapping) and "script" in job
    ]


def test_gitlab_commands_run_as_a_merge_request_then_its_merge(mage_url, workdir):
    # Plan reads as the Viewer (unprotected variables), apply writes as the owner (protected ones).
    project_variables = {
        "MAGE_URL": mage_url,
        "MAGE_PLAN_EMAIL": VIEWER_EMAIL,
        "MAGE_PLAN_PASSWORD": VIEWER_PASSWORD,
        "MAGE_APPLY_EMAIL": OWNER_EMAIL,
        "MAGE_APPLY_PASSWORD": OWNER_PASSWORD,
    }
    steps = [
        (command, gitlab_job_variables(job, project_variables))
        for name, job, commands in gitlab_commands_by_job()
        for command in commands
        if command.subcommand != "fmt" and name != "drift"  # the drift check: tests/test_drift.py
    ]
    assert [command.subcommand for command, _ in steps] == ["validate", "plan", "apply", "plan", "wait"]
    scenario = Scenario(workdir, {})
    for command, env in steps:
        scenario.run(command, env)
        if "--codequality" in command.args:
            report = workdir / command.args[command.args.index("--codequality") + 1]
            assert check_gitlab_report(report.read_text(encoding="utf-8")) == [], "nothing wrong here"
            report.unlink()
    assert (workdir / "plan.md").read_text(encoding="utf-8").startswith(MARKDOWN_MARKER + "\n")
    scenario.run(*steps[1])


def test_gitlab_publishes_each_jobs_problems_as_a_code_quality_report():
    pipeline = load_yaml(GITLAB_PIPELINE)
    for name, job, commands in gitlab_commands_by_job():
        writes = {c.args[c.args.index("--codequality") + 1] for c in commands if "--codequality" in c.args}
        if name in ("validate", "plan", "apply"):
            assert writes == {"gl-code-quality-report.json"}, name
            # Kept when the job fails, which is when the report has something to show.
            assert job["artifacts"]["when"] == "always", name
            assert job["artifacts"]["reports"] == {"codequality": "gl-code-quality-report.json"}, name
        else:
            assert not writes, name
    assert pipeline["plan"]["artifacts"]["paths"] == ["plan.json", "plan.md"]


def test_every_ci_command_is_one_the_cli_knows():
    github = [c for _, _, commands in github_commands_by_job() for c in commands]
    gitlab = [c for _, _, commands in gitlab_commands_by_job() for c in commands]
    hooks = [hook_commands(hook["id"])[1] for hook in load_yaml(HOOKS)]
    used = {command.subcommand for command in [*github, *gitlab]} | set(hooks)
    assert {"validate", "plan", "apply", "fmt"} <= used
    # fmt is checked by test_fmt_commands_in_ci_files (it comes with issue 5, part 2).
    assert used - {"fmt"} <= set(cli.list_commands(click.Context(cli)))


def fmt_commands() -> list[Any]:
    github = [c for _, _, commands in github_commands_by_job() for c in commands]
    gitlab = [c for _, _, commands in gitlab_commands_by_job() for c in commands]
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
        return f'bash "{ROOT}/scripts/github-action/run.sh"'
    return "\n".join(load_yaml(GITLAB_PIPELINE)["plan"]["script"])


def github_plan_inputs(allow_restart: bool) -> dict[str, str]:
    """The variables action.yml gives run.sh for the example workflow's plan step."""
    workflow = load_yaml(GITHUB_WORKFLOW)
    (step,) = [step for step in workflow["jobs"]["plan"]["steps"] if step.get("id") == "plan"]
    args = expand(step["with"]["args"], github_values(workflow, allow_restart=allow_restart))
    return {"BFS_COMMAND": "plan", "BFS_PATHS": "backfills/", "BFS_ARGS": args}


def run_plan_script(
    tmp_path: Path, platform: str, plan_exit: int, extra_env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    """The plan job's shell, with a stub backfill-sync that prints the marker, notes its arguments, exits."""
    stub = tmp_path / "bin" / "backfill-sync"
    stub.parent.mkdir()
    stub.write_text(
        f"#!/bin/sh\necho \"$@\" > args.txt\necho '{MARKDOWN_MARKER}'\nexit {plan_exit}\n", encoding="utf-8"
    )
    stub.chmod(0o755)
    output = tmp_path / "github_output"
    output.touch()
    env = {
        **clean_environment(),
        "PATH": f"{stub.parent}:{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(output),
        "MAGE_URL": "https://mage.example.com",
        **extra_env,
    }
    # GitHub runs `run:` with `bash -e`; GitLab's runner runs the script lines in one `bash -e -o pipefail`.
    shell = ["bash", "-e", "-o", "pipefail", "-c", plan_script(platform)]
    return subprocess.run(shell, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)


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
    env = github_plan_inputs(False) if platform == "github" else {}
    ran = run_plan_script(tmp_path, platform, plan_exit, env)
    assert ran.returncode == job_exit, ran.stdout + ran.stderr
    if platform == "github":
        output = (tmp_path / "github_output").read_text(encoding="utf-8")
        assert output == (f"changes={changes}\n" if changes else "")
    assert (tmp_path / "plan.md").read_text(encoding="utf-8") == MARKDOWN_MARKER + "\n"


@pytest.mark.parametrize(
    ("platform", "env", "restart"),
    [
        pytest.param("github", github_plan_inputs(False), False, id="github-ordinary"),
        pytest.param("github", github_plan_inputs(True), True, id="github-allow-restart"),
        pytest.param("gitlab", {}, False, id="gitlab-ordinary"),
        pytest.param("gitlab", {"ALLOW_RESTART": "false"}, False, id="gitlab-allow-restart-false"),
        pytest.param("gitlab", {"ALLOW_RESTART": "true"}, True, id="gitlab-allow-restart"),
    ],
)
def test_plan_step_passes_allow_restart_only_when_asked(
    tmp_path, platform: str, env: dict[str, str], restart: bool
):
    ran = run_plan_script(tmp_path, platform, EXIT_CHANGES, env)
    assert ran.returncode == EXIT_OK, ran.stdout + ran.stderr
    args = (tmp_path / "args.txt").read_text(encoding="utf-8").split()
    assert args[0] == "plan"
    assert ("--allow-restart" in args) is restart
    assert "" not in args, "an empty flag must not become an empty argument"


@pytest.mark.parametrize("platform", ["github", "gitlab"])
def test_plan_step_refuses_to_plan_against_localhost_without_mage_url(tmp_path, platform: str):
    env = github_plan_inputs(False) if platform == "github" else {}
    ran = run_plan_script(tmp_path, platform, EXIT_OK, {**env, "MAGE_URL": ""})
    assert ran.returncode == EXIT_ERROR
    assert "MAGE_URL" in ran.stdout + ran.stderr
    assert not (tmp_path / "args.txt").exists(), "backfill-sync must not have run"


# -- the GitLab merge-request note script, against a fake GitLab API -----------------------------------

NOTE_USER_ID, OTHER_USER_ID = 7, 8
HEAD_SHA = "0123456789abcdef0123456789abcdef01234567"


class FakeGitLab(ThreadingHTTPServer):
    """GET /user, the merge request's notes (one page), and records every PUT/POST it is sent."""

    def __init__(self, notes: list[dict[str, Any]]) -> None:
        super().__init__(("127.0.0.1", 0), FakeGitLabHandler)
        self.notes = notes
        self.writes: list[tuple[str, str, dict[str, Any]]] = []
        self.tokens: set[str] = set()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/v4"


class FakeGitLabHandler(BaseHTTPRequestHandler):
    server: FakeGitLab

    def do_GET(self) -> None:
        self.server.tokens.add(self.headers["PRIVATE-TOKEN"])
        path = self.path.split("?")[0]
        if path == "/api/v4/user":
            self.answer({"id": NOTE_USER_ID, "username": "project_1_bot"})
        elif path == "/api/v4/projects/1/merge_requests/3/notes":
            self.answer(self.server.notes)
        else:
            self.answer({"message": "404 Not Found"}, status=404)

    def do_PUT(self) -> None:
        self.record("PUT")

    def do_POST(self) -> None:
        self.record("POST")

    def record(self, method: str) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.writes.append((method, self.path, body))
        self.answer({"id": 99, **body})

    def answer(self, data: Any, status: int = 200) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads what was sent, not the log."""


@contextmanager
def fake_gitlab(notes: list[dict[str, Any]]) -> Iterator[FakeGitLab]:
    with serving(FakeGitLab(notes)) as server:
        yield server


def note(note_id: int, author: int, body: str) -> dict[str, Any]:
    return {"id": note_id, "author": {"id": author}, "body": body, "system": False}


def run_note_script(
    tmp_path: Path, api_url: str, extra_env: Mapping[str, str]
) -> subprocess.CompletedProcess[str]:
    script = load_yaml(GITLAB_PIPELINE)[".write-mr-note"]
    env = {
        **clean_environment(),
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_API_V4_URL": api_url,
        "CI_MERGE_REQUEST_PROJECT_ID": "1",
        "CI_PROJECT_ID": "1",
        "CI_MERGE_REQUEST_IID": "3",
        "CI_COMMIT_SHA": HEAD_SHA,
        "CI_PIPELINE_URL": "https://gitlab.example.com/g/p/-/pipelines/5",
        "GITLAB_TOKEN": "glpat-test",
        **extra_env,
    }
    shell = ["bash", "-e", "-o", "pipefail", "-c", script]
    return subprocess.run(shell, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)


PLAN_MD = f"{MARKDOWN_MARKER}\n### backfill-sync plan\n\n**1 to create**\n"
OLD_PLAN = f"{MARKDOWN_MARKER}\nolder plan"


@pytest.mark.parametrize(
    ("notes", "method", "path"),
    [
        pytest.param([], "POST", "/api/v4/projects/1/merge_requests/3/notes", id="first-note"),
        pytest.param(
            [note(10, OTHER_USER_ID, OLD_PLAN), note(11, NOTE_USER_ID, OLD_PLAN)],
            "PUT",
            "/api/v4/projects/1/merge_requests/3/notes/11",
            id="updates-its-own-note-not-someone-elses",
        ),
        pytest.param(
            [note(10, OTHER_USER_ID, OLD_PLAN), note(12, NOTE_USER_ID, "lgtm")],
            "POST",
            "/api/v4/projects/1/merge_requests/3/notes",
            id="someone-elses-marker-note-is-left-alone",
        ),
    ],
)
def test_gitlab_note_script_writes_the_plan_with_its_commit(
    tmp_path, notes: list[dict[str, Any]], method: str, path: str
):
    (tmp_path / "plan.md").write_text(PLAN_MD, encoding="utf-8")
    with fake_gitlab(notes) as gitlab:
        ran = run_note_script(tmp_path, gitlab.api_url, {})
    assert ran.returncode == EXIT_OK, ran.stdout + ran.stderr
    ((sent_method, sent_path, body),) = gitlab.writes
    assert (sent_method, sent_path) == (method, path)
    lines = body["body"].split("\n")
    assert lines[0] == MARKDOWN_MARKER, "the marker stays the first line"
    assert HEAD_SHA in lines[1]
    assert "\n".join([lines[0], *lines[2:]]) == PLAN_MD
    assert gitlab.tokens == {"glpat-test"}


def test_gitlab_note_script_says_the_newest_commit_failed(tmp_path):
    with fake_gitlab([note(11, NOTE_USER_ID, OLD_PLAN)]) as gitlab:
        ran = run_note_script(tmp_path, gitlab.api_url, {"PLAN_FAILED": "true"})
    assert ran.returncode == EXIT_OK, ran.stdout + ran.stderr
    ((method, _, body),) = gitlab.writes
    assert method == "PUT"
    assert body["body"].startswith(MARKDOWN_MARKER + "\n")
    assert f"failed for the newest commit {HEAD_SHA}" in body["body"]
    assert "https://gitlab.example.com/g/p/-/pipelines/5" in body["body"]


def test_gitlab_note_script_explains_a_missing_token(tmp_path):
    (tmp_path / "plan.md").write_text(PLAN_MD, encoding="utf-8")
    with fake_gitlab([]) as gitlab:
        ran = run_note_script(tmp_path, gitlab.api_url, {"GITLAB_TOKEN": ""})
    assert ran.returncode == EXIT_ERROR
    assert "GITLAB_TOKEN is not set" in ran.stderr and "Traceback" not in ran.stderr
    assert gitlab.writes == [] and gitlab.tokens == set()


def test_gitlab_note_script_does_nothing_outside_merge_requests(tmp_path):
    with fake_gitlab([]) as gitlab:
        ran = run_note_script(tmp_path, gitlab.api_url, {"CI_PIPELINE_SOURCE": "push", "GITLAB_TOKEN": ""})
    assert ran.returncode == EXIT_OK, ran.stderr
    assert gitlab.writes == [] and gitlab.tokens == set()
