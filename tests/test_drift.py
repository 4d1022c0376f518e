"""The scheduled drift checks (examples/ci/github-drift.yml, the GitLab `drift` job): read-only, and they
fail exactly when Mage differs from the manifests, not when runs make progress."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from backfill_sync.client import MageClient
from backfill_sync.models import BackfillFields, MageConnection
from tests.ci_commands import gitlab_job_variables, job_environment, load_yaml, secrets_referenced
from tests.emulator_http import call
from tests.examples import OWNER_EMAIL, OWNER_PASSWORD, VIEWER_EMAIL, VIEWER_PASSWORD, examples_emulator
from tests.github_action import run_job
from tests.test_action import logs, make_runner
from tests.test_ci_files import (
    GITHUB_DRIFT,
    GITHUB_WORKFLOW,
    GITLAB_PIPELINE,
    PLAN_SECRETS,
    clean_environment,
    run_program,
)

DRIFT_MESSAGE = "::error title=Mage drifted from the default branch::"


def test_the_github_drift_check_runs_nightly_read_only_and_apart_from_apply():
    drift = load_yaml(GITHUB_DRIFT)
    triggers = drift[True]  # PyYAML reads `on` as True
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    assert triggers["schedule"][0]["cron"].split()[2:] == ["*", "*", "*"], "every day"
    assert drift["permissions"] == {"contents": "read"}
    (job,) = drift["jobs"].values()
    assert "permissions" not in job and "environment" not in job
    assert secrets_referenced(job) <= PLAN_SECRETS, "the Viewer's credentials only"
    # A queued check sharing the apply workflow's group would replace a queued merge's apply.
    assert drift["concurrency"]["group"] != load_yaml(GITHUB_WORKFLOW)["concurrency"]["group"]
    text = GITHUB_DRIFT.read_text(encoding="utf-8")
    assert "60 days" in text, "GitHub disables scheduled workflows of inactive repositories"


def test_github_drift_job_passes_while_runs_progress_and_fails_on_drift(tmp_path):
    job = next(iter(load_yaml(GITHUB_DRIFT)["jobs"].values()))
    with examples_emulator() as mage_url:
        # main was merged and applied; since then the scheduler has moved the started backfill on.
        applied = run_program(
            "backfill-sync",
            ["apply", "--auto-approve", "backfills/"],
            cwd=make_runner(tmp_path, {}).workdir,
            env={"MAGE_URL": mage_url, "MAGE_EMAIL": OWNER_EMAIL, "MAGE_PASSWORD": OWNER_PASSWORD},
        )
        assert applied.returncode == 0, applied.stdout + applied.stderr
        owner = MageClient(MageConnection(mage_url, email=OWNER_EMAIL, password=OWNER_PASSWORD))
        with owner:
            started = [row for row in owner.list_backfills() if row.status is not None]
            assert started, "the examples start a backfill"
            for row in started:
                call(
                    mage_url, "POST", "/_emulator/runs/complete", {"backfill_id": row.id, "status": "failed"}
                )
            settings = {
                "MAGE_URL": mage_url,
                "MAGE_PLAN_EMAIL": VIEWER_EMAIL,
                "MAGE_PLAN_PASSWORD": VIEWER_PASSWORD,
            }
            env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}

            calm = make_runner(tmp_path, {**env, **job_environment(job, settings)})
            assert run_job(calm, job, {}) == 0, logs(calm)
            assert DRIFT_MESSAGE not in logs(calm)

            # Someone edits a managed backfill in Mage by hand.
            edited = started[0]
            owner.update_backfill(edited.pipeline_uuid or "", edited.id, BackfillFields(variables={"x": 1}))
            drifted = make_runner(tmp_path, {**env, **job_environment(job, settings)})
            assert run_job(drifted, job, {}) == 1
            assert DRIFT_MESSAGE in logs(drifted)
    assert '"x": 1' in (tmp_path / "summary.md").read_text(encoding="utf-8"), "the plan shows the drift"


def test_the_gitlab_drift_job_runs_only_on_a_schedule_and_nothing_else_does():
    pipeline = load_yaml(GITLAB_PIPELINE)
    assert pipeline["drift"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "schedule" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH'}
    ]
    assert pipeline["drift"]["resource_group"] == "mage", "never reads Mage mid-apply"
    assert pipeline["drift"]["variables"] == pipeline["plan"]["variables"], "the Viewer's credentials"
    for name in ("validate", "plan", "apply", "plan-failed"):
        first = pipeline[name]["rules"][0]
        assert first == {"if": '$CI_PIPELINE_SOURCE == "schedule"', "when": "never"}, name


@pytest.mark.parametrize(
    ("plan_exit", "job_exit", "drifted"),
    [
        pytest.param(0, 0, False, id="in-step"),
        pytest.param(2, 2, True, id="drifted"),
        pytest.param(1, 1, False, id="error"),
    ],
)
def test_the_gitlab_drift_script_fails_on_drift_and_errors(tmp_path: Path, plan_exit, job_exit, drifted):
    stub = tmp_path / "bin" / "backfill-sync"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\necho "$@" > args.txt\nexit {plan_exit}\n', encoding="utf-8")
    stub.chmod(0o755)
    variables = gitlab_job_variables(
        load_yaml(GITLAB_PIPELINE)["drift"], {"MAGE_URL": "https://mage.example.com"}
    )
    env = {
        **clean_environment(),
        **variables,
        "PATH": f"{stub.parent}:/usr/bin:/bin",
        "CI_DEFAULT_BRANCH": "main",
    }
    script = "\n".join(load_yaml(GITLAB_PIPELINE)["drift"]["script"])
    ran = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert ran.returncode == job_exit
    assert ("Mage drifted from the manifests on main" in ran.stderr) is drifted
    assert (tmp_path / "args.txt").read_text(encoding="utf-8").split() == [
        "plan",
        "--detailed-exitcode",
        "backfills/",
    ]
