"""action.yml, command `comment`: keep one backfill-sync comment on the pull request (stdlib only).

The comment is the plan (plan.md, with the commit it is of), or, when BFS_PLAN_RESULT is not `success`,
a note that the newest commit failed, so that an older plan never looks current. It is found by the
plan's hidden marker on its first line and by its author (BFS_COMMENT_AUTHOR), updated, or made.

Environment: BFS_GITHUB_TOKEN, BFS_PLAN_RESULT, BFS_COMMENT_AUTHOR, and the runner's GITHUB_API_URL,
GITHUB_REPOSITORY, GITHUB_EVENT_NAME, GITHUB_EVENT_PATH, GITHUB_SERVER_URL, GITHUB_RUN_ID.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

MARKER = "<!-- backfill-sync:plan -->"
MAGE_CREDENTIALS = ("MAGE_TOKEN", "MAGE_PASSWORD", "MAGE_EMAIL", "MAGE_API_KEY")
PAGE = 100


class Refused(Exception):
    """GitHub answered with an error status."""


def main() -> int:
    held = [name for name in MAGE_CREDENTIALS if os.environ.get(name)]
    if held:
        # The job that may write to the pull request must not also hold Mage credentials.
        return fail(
            f"the comment step has Mage credentials in its environment ({', '.join(held)}); run it in a job "
            "of its own without them (only `pull-requests: write`), as examples/ci/github-actions.yml does"
        )
    if os.environ.get("GITHUB_EVENT_NAME") not in ("pull_request", "pull_request_target"):
        print("Not a pull request: no comment to write.")
        return 0
    token = os.environ.get("BFS_GITHUB_TOKEN", "")
    if not token:
        return fail("no GitHub token: pass `github-token` (the default is the job's own token)")
    event = json.loads(Path(os.environ["GITHUB_EVENT_PATH"]).read_text(encoding="utf-8"))
    pull = event["pull_request"]
    try:
        body = comment_body(pull["head"]["sha"])
        write_comment(token, pull["number"], body)
    except Refused as exc:
        return fail(f"{exc}; the job needs `permissions: pull-requests: write`")
    except OSError as exc:
        return fail(f"cannot write the pull request's comment: {exc}")
    return 0


def comment_body(sha: str) -> str:
    run = (
        f"{os.environ['GITHUB_SERVER_URL']}/{os.environ['GITHUB_REPOSITORY']}"
        f"/actions/runs/{os.environ['GITHUB_RUN_ID']}"
    )
    if os.environ.get("BFS_PLAN_RESULT", "success") != "success":
        return (
            f"{MARKER}\n### backfill-sync plan\n\n"
            f"**:x: validate or plan failed for the newest commit {sha}**: see [the run]({run}).\n"
            "Any plan shown here before was for an older commit and is out of date.\n"
        )
    first, _, rest = Path("plan.md").read_text(encoding="utf-8").partition("\n")
    return f"{first}\nPlan of commit {sha} ([run]({run})).\n{rest}"


def write_comment(token: str, number: int, body: str) -> None:
    api = f"{os.environ['GITHUB_API_URL']}/repos/{os.environ['GITHUB_REPOSITORY']}"
    author = os.environ.get("BFS_COMMENT_AUTHOR") or "github-actions[bot]"
    ours, page = None, 1
    while ours is None:
        comments = call(token, "GET", f"{api}/issues/{number}/comments?per_page={PAGE}&page={page}")
        ours = next(
            (c for c in comments if c["user"]["login"] == author and (c["body"] or "").startswith(MARKER)),
            None,
        )
        if len(comments) < PAGE:
            break
        page += 1
    if ours is not None:
        call(token, "PATCH", f"{api}/issues/comments/{ours['id']}", {"body": body})
        print(f"Updated the plan comment {ours['html_url']}")
    else:
        made = call(token, "POST", f"{api}/issues/{number}/comments", {"body": body})
        print(f"Wrote the plan comment {made['html_url']}")


def call(token: str, method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode("utf-8")
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "Content-Type": "application/json",
    }
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", errors="replace")[:300]
        raise Refused(f"GitHub answered {method} {url} with HTTP {exc.code}: {detail}") from None


def fail(message: str) -> int:
    escaped = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    print(f"::error title=backfill-sync comment::{escaped}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
