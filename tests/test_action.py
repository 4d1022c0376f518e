"""action.yml, the composite GitHub Action: valid for GitHub, keeps the credential split, and its steps
(run as a runner would, tests/github_action.py) validate, plan, comment and apply against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from backfill_sync.render import MARKDOWN_MARKER
from tests.ci_commands import job_environment, load_yaml, strings_in
from tests.examples import (
    OWNER_EMAIL,
    OWNER_PASSWORD,
    ROOT,
    VIEWER_EMAIL,
    VIEWER_PASSWORD,
    copy_examples,
    examples_emulator,
)
from tests.github_action import ACTION, Runner, holds, run_job
from tests.loopback import serving
from tests.test_ci_files import (
    BIN,
    GITHUB_WAIT,
    GITHUB_WORKFLOW,
    check_jsonschema,
    clean_environment,
    finish_every_run,
)

COMMENT_SCRIPT = ROOT / "scripts" / "github-action" / "comment.py"
HEAD_SHA = "89abcdef0123456789abcdef0123456789abcdef"
REPOSITORY = "acme/data"
PR_NUMBER = 7
BOT = "github-actions[bot]"


def action_steps() -> list[dict[str, Any]]:
    return list(load_yaml(ACTION)["runs"]["steps"])


def test_the_action_matches_githubs_schema(tmp_path):
    checked = check_jsonschema("vendor.github-actions", ACTION)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = tmp_path / "action.yml"
    broken.write_text(ACTION.read_text(encoding="utf-8").replace("using: composite", "using: compost"))
    assert check_jsonschema("vendor.github-actions", broken).returncode != 0


def test_the_step_with_mage_credentials_never_gets_the_github_token():
    steps = action_steps()
    (run_step,) = [step for step in steps if step.get("id") == "run"]
    (comment_step,) = [step for step in steps if "comment.py" in step.get("run", "")]
    assert not any("github-token" in text or "github.token" in text for text in strings_in(run_step))
    assert "inputs.command != 'comment'" in run_step["if"]
    assert comment_step["if"] == "inputs.command == 'comment'"
    assert not any("MAGE_" in text for text in strings_in(comment_step))
    scripts = ROOT / "scripts" / "github-action"
    for script in ("run.sh", "install.sh"):
        text = (scripts / script).read_text(encoding="utf-8")
        assert "TOKEN" not in text.replace("MAGE_TOKEN", ""), script


@pytest.mark.parametrize(
    ("command", "runs"),
    [
        pytest.param("validate", {"Install backfill-sync", "run"}, id="validate"),
        pytest.param("plan", {"Install backfill-sync", "run", "Upload the plan"}, id="plan"),
        pytest.param("apply", {"Install backfill-sync", "Download the plan", "run"}, id="apply"),
        pytest.param("wait", {"Install backfill-sync", "run"}, id="wait"),
        pytest.param("comment", {"Download the plan", "comment"}, id="comment"),
    ],
)
def test_each_command_runs_only_its_steps(command: str, runs: set[str]):
    inputs = {"command": command, "plan-result": "success"}
    chosen = set()
    for step in action_steps():
        if "if" not in step:
            continue
        if holds(step["if"], inputs):
            chosen.add(step.get("id") or ("comment" if "comment.py" in step.get("run", "") else step["name"]))
    assert chosen == runs


def test_a_failed_plan_is_not_downloaded_for_the_comment():
    (download,) = [step for step in action_steps() if step.get("name") == "Download the plan"]
    assert not holds(download["if"], {"command": "comment", "plan-result": "failure"})


@pytest.mark.parametrize(
    ("version", "requirement"),
    [
        pytest.param("", str(ROOT), id="the-actions-own-copy"),
        pytest.param("0.2.0", "backfill-sync==0.2.0", id="a-version"),
        pytest.param(
            "backfill-sync @ git+https://x/y@v1", "backfill-sync @ git+https://x/y@v1", id="a-requirement"
        ),
    ],
)
def test_install_takes_the_version_input(tmp_path, version: str, requirement: str):
    runner = make_runner(tmp_path, {})
    code, _ = runner.run_action({"command": "validate", "version": version})
    assert code == 0, logs(runner)
    assert runner.installed_requirements() == [
        f"-m pip install --disable-pip-version-check --quiet {requirement}"
    ]


def make_runner(tmp_path: Path, env: Mapping[str, str], name: str = "job") -> Runner:
    workdir = tmp_path / name
    if not workdir.exists():
        workdir.mkdir()
        copy_examples(workdir / "backfills")
    return Runner(
        workdir=workdir,
        artifacts=tmp_path / "artifacts",
        env={**clean_environment(), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env},
    )


def logs(runner: Runner) -> str:
    return "\n".join(ran.stdout + ran.stderr for ran in runner.logs)


# -- the example workflow through the action: a pull request, then its merge -----------------------------


class FakeGitHub(ThreadingHTTPServer):
    """The pull request's comments (one page) and every write it is sent; `refuse` answers 403."""

    def __init__(self, comments: list[dict[str, Any]], refuse: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), FakeGitHubHandler)
        self.comments = comments
        self.refuse = refuse
        self.writes: list[tuple[str, str, dict[str, Any]]] = []
        self.tokens: set[str] = set()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FakeGitHubHandler(BaseHTTPRequestHandler):
    server: FakeGitHub

    def do_GET(self) -> None:
        self.server.tokens.add(self.headers["Authorization"])
        if self.path.split("?")[0] == f"/repos/{REPOSITORY}/issues/{PR_NUMBER}/comments":
            self.answer(self.server.comments)
        else:
            self.answer({"message": "Not Found"}, status=404)

    def do_POST(self) -> None:
        self.record("POST")

    def do_PATCH(self) -> None:
        self.record("PATCH")

    def record(self, method: str) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.server.refuse:
            self.answer({"message": "Resource not accessible by integration"}, status=403)
            return
        self.server.writes.append((method, self.path, body))
        self.answer({"id": 99, "html_url": "https://github.com/acme/data/pull/7#issuecomment-99", **body})

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
def fake_github(comments: list[dict[str, Any]], refuse: bool = False) -> Iterator[FakeGitHub]:
    with serving(FakeGitHub(comments, refuse)) as server:
        yield server


def github_env(tmp_path: Path, api_url: str, event_name: str = "pull_request") -> dict[str, str]:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": PR_NUMBER, "head": {"sha": HEAD_SHA}}}))
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": api_url,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_RUN_ID": "4242",
        "GITHUB_EVENT_NAME": event_name,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


def comment(comment_id: int, login: str, body: str) -> dict[str, Any]:
    return {"id": comment_id, "user": {"login": login}, "body": body, "html_url": f"https://x/{comment_id}"}


def workflow_values(workflow: Mapping[str, Any], **more: str) -> dict[str, str]:
    """The expressions of the example workflow's `with:` on an ordinary run."""
    return {
        "env.MAX_TOTAL_RUNS": workflow["env"]["MAX_TOTAL_RUNS"],
        "inputs.allow_restart && '--allow-restart' || ''": "",
        "needs.plan.result": "success",
        **more,
    }


def test_the_workflow_runs_a_pull_request_then_its_merge_through_the_action(tmp_path):
    workflow = load_yaml(GITHUB_WORKFLOW)
    jobs = workflow["jobs"]
    secrets = {
        "MAGE_PLAN_EMAIL": VIEWER_EMAIL,
        "MAGE_PLAN_PASSWORD": VIEWER_PASSWORD,
        "MAGE_EMAIL": OWNER_EMAIL,
        "MAGE_PASSWORD": OWNER_PASSWORD,
    }
    with examples_emulator() as mage_url, fake_github([]) as github:
        base = github_env(tmp_path, github.api_url)
        settings = {"MAGE_URL": mage_url, **secrets}

        def job(name: str, checkout: str) -> tuple[int, Runner]:
            runner = make_runner(tmp_path, {**base, **job_environment(jobs[name], settings)}, checkout)
            return run_job(runner, jobs[name], workflow_values(workflow)), runner

        # The pull request: validate, plan (changes), then the comment job posts the plan.
        code, validate = job("validate", "pr")
        assert code == 0, logs(validate)
        code, plan = job("plan", "pr")
        assert code == 0, logs(plan)
        assert plan.outputs == {"steps.plan.outputs.changes": "true"}
        assert (tmp_path / "artifacts" / "backfill-sync-plan" / "plan.json").is_file()
        assert MARKDOWN_MARKER in (tmp_path / "summary.md").read_text(encoding="utf-8")
        code, commenter = job("comment", "comment-job")
        assert code == 0, logs(commenter)
        ((method, path, body),) = github.writes
        assert (method, path) == ("POST", f"/repos/{REPOSITORY}/issues/{PR_NUMBER}/comments")
        lines = body["body"].split("\n")
        assert lines[0] == MARKDOWN_MARKER and HEAD_SHA in lines[1]
        assert "https://github.com/acme/data/actions/runs/4242" in lines[1]
        assert github.tokens == {"Bearer ghs-test-token"}

        # The merge: plan again from main, apply that plan, then nothing is left to do.
        code, plan = job("plan", "main")
        assert code == 0 and plan.outputs == {"steps.plan.outputs.changes": "true"}, logs(plan)
        code, apply = job("apply", "main")
        assert code == 0, logs(apply)
        assert "Apply complete" in logs(apply)
        code, again = job("plan", "main")
        assert code == 0 and again.outputs == {"steps.plan.outputs.changes": "false"}, logs(again)

        # Then the wait workflow, read-only, once the runs the apply started are done.
        finish_every_run(mage_url)
        (wait_job,) = load_yaml(GITHUB_WAIT)["jobs"].values()
        waiter = make_runner(tmp_path, {**base, **job_environment(wait_job, settings)}, "main")
        code = run_job(waiter, wait_job, {"inputs.timeout || '2h'": "2h"})
        assert code == 0, logs(waiter)
        assert "Every date of the started backfills completed." in logs(waiter)


def test_the_comment_job_holds_no_mage_credentials_and_the_action_checks(tmp_path):
    jobs = load_yaml(GITHUB_WORKFLOW)["jobs"]
    assert "env" not in jobs["comment"]
    (step,) = jobs["comment"]["steps"]
    assert step["with"] == {"command": "comment", "plan-result": "${{ needs.plan.result }}"}
    with fake_github([]) as github:
        runner = make_runner(tmp_path, {**github_env(tmp_path, github.api_url), "MAGE_TOKEN": "secret"})
        (runner.workdir / "plan.md").write_text(f"{MARKDOWN_MARKER}\nplan\n")
        code, _ = runner.run_action({"command": "comment", "plan-result": "failure"})
    assert code == 1
    assert "has Mage credentials in its environment (MAGE_TOKEN)" in logs(runner)
    assert github.writes == [] and github.tokens == set()


# -- the comment script against a fake GitHub API -------------------------------------------------------

PLAN_MD = f"{MARKDOWN_MARKER}\n### backfill-sync plan\n\n**1 to create**\n"
OLD = f"{MARKDOWN_MARKER}\nolder plan"


def run_comment(tmp_path: Path, api_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "plan.md").write_text(PLAN_MD, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(COMMENT_SCRIPT)],
        cwd=tmp_path,
        env={
            **clean_environment(),
            **github_env(tmp_path, api_url),
            "BFS_GITHUB_TOKEN": "ghs-test-token",
            "BFS_PLAN_RESULT": "success",
            "BFS_COMMENT_AUTHOR": BOT,
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("comments", "method", "path"),
    [
        pytest.param([], "POST", f"/repos/{REPOSITORY}/issues/{PR_NUMBER}/comments", id="first-comment"),
        pytest.param(
            [comment(10, "someone", OLD), comment(11, BOT, OLD)],
            "PATCH",
            f"/repos/{REPOSITORY}/issues/comments/11",
            id="updates-its-own-not-someone-elses",
        ),
        pytest.param(
            [comment(10, "someone", OLD), comment(12, BOT, "lgtm")],
            "POST",
            f"/repos/{REPOSITORY}/issues/{PR_NUMBER}/comments",
            id="a-marker-by-someone-else-is-left-alone",
        ),
    ],
)
def test_the_comment_is_the_plan_with_its_commit(tmp_path, comments, method: str, path: str):
    with fake_github(comments) as github:
        ran = run_comment(tmp_path, github.api_url)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    ((sent_method, sent_path, body),) = github.writes
    assert (sent_method, sent_path) == (method, path)
    lines = body["body"].split("\n")
    assert lines[0] == MARKDOWN_MARKER and HEAD_SHA in lines[1]
    assert "\n".join([lines[0], *lines[2:]]) == PLAN_MD


def test_the_comment_says_the_newest_commit_failed(tmp_path):
    with fake_github([comment(11, BOT, OLD)]) as github:
        ran = run_comment(tmp_path, github.api_url, BFS_PLAN_RESULT="failure")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    ((method, _, body),) = github.writes
    assert method == "PATCH"
    assert body["body"].startswith(MARKDOWN_MARKER + "\n")
    assert f"failed for the newest commit {HEAD_SHA}" in body["body"]


def test_outside_pull_requests_the_comment_does_nothing(tmp_path):
    with fake_github([]) as github:
        ran = run_comment(tmp_path, github.api_url, GITHUB_EVENT_NAME="push")
    assert ran.returncode == 0
    assert github.writes == [] and github.tokens == set()


def test_a_refused_comment_says_what_permission_is_missing(tmp_path):
    with fake_github([], refuse=True) as github:
        ran = run_comment(tmp_path, github.api_url)
    assert ran.returncode == 1
    assert "HTTP 403" in ran.stdout and "permissions: pull-requests: write" in ran.stdout
    assert "Traceback" not in ran.stderr
