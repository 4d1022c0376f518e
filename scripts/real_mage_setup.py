"""Prepare a fresh real Mage for the conformance suite: a pipeline with a no-op block, a pipeline whose
block fails on chosen dates, an Editor user and a Viewer user.

Usage: real_mage_setup.py URL PIPELINE EDITOR_EMAIL EDITOR_PASSWORD [FLAG_PIPELINE FLAG_DIR
       [VIEWER_EMAIL VIEWER_PASSWORD]]
(stdlib only; idempotent)

The flag pipeline's block fails for a date `ds` while the file FLAG_DIR/<ds> exists, and appends one
line per execution to FLAG_DIR/exec.log, so tests choose failing dates and count real executions.
Its block has a name of its own: Mage shares block code by name across pipelines (§6.16).
"""

from __future__ import annotations

import base64
import json
import sys
import urllib.request
from typing import Any

API_KEY = "zkWlN0PkIKSN0C11CfUHUj84OT5XOJ6tDZ6bDRO2"  # Mage's public key, the same on every install
OWNER = {"email": "admin@admin.com", "password": "admin"}
# The block must never fetch anything: the contract tests really run its backfills.
NOOP_BLOCK = """if "custom" not in globals():
    from mage_ai.data_preparation.decorators import custom


@custom
def noop(*args, **kwargs):
    return {"ok": 1}
"""


def call(url: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"X-API-KEY": API_KEY, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def log_in(url: str) -> str:
    answer = call(url, "POST", "/api/sessions", {"api_key": API_KEY, "session": OWNER})
    jwt = answer["session"]["token"]
    payload = jwt.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["token"])


FLAG_BLOCK = """if "custom" not in globals():
    from mage_ai.data_preparation.decorators import custom
import os

FLAG_DIR = {flag_dir!r}


@custom
def bfs_flag_blk(*args, **kwargs):
    ds = kwargs.get("ds")
    with open(os.path.join(FLAG_DIR, "exec.log"), "a") as log:
        log.write(f"{{ds}}\\n")
    if os.path.exists(os.path.join(FLAG_DIR, str(ds))):
        raise Exception(f"flagged to fail: {{ds}}")
    return {{"ok": 1}}
"""


def ensure_pipeline(
    url: str, token: str, uuid: str, block_name: str = "noop", content: str = NOOP_BLOCK
) -> None:
    if "error" not in call(url, "GET", f"/api/pipelines/{uuid}", token=token):
        return
    made = call(url, "POST", "/api/pipelines", {"pipeline": {"name": uuid, "type": "python"}}, token)
    if "error" in made:
        sys.exit(f"could not create pipeline {uuid}: {made['error'].get('exception')}")
    block = {"name": block_name, "type": "custom", "language": "python", "content": content}
    answer = call(url, "POST", f"/api/pipelines/{uuid}/blocks", {"block": block}, token)
    if "error" in answer:
        sys.exit(f"could not add the block {block_name}: {answer['error'].get('exception')}")


def ensure_user(url: str, token: str, email: str, password: str, role_name: str = "Editor") -> None:
    roles = call(url, "GET", "/api/roles?_limit=100", token=token).get("roles", [])
    role_ids = [role["id"] for role in roles if role.get("name") == role_name]
    if not role_ids:
        sys.exit(f"Mage has no {role_name} role")
    user = {
        "email": email,
        "username": email.split("@")[0],
        "password": password,
        "password_confirmation": password,
        "roles_new": role_ids,
    }
    # Mage 0.9.80 answers 500 ('CachingQuery' ... 'from_self') yet creates the user: check by logging in.
    call(url, "POST", "/api/users", {"user": user}, token)
    login = call(
        url, "POST", "/api/sessions", {"api_key": API_KEY, "session": {"email": email, "password": password}}
    )
    if "session" not in login:
        sys.exit(f"the {role_name} user {email} cannot log in: {login.get('error')}")


def main(url: str, pipeline: str, editor_email: str, editor_password: str, *flags: str) -> None:
    token = log_in(url)
    ensure_pipeline(url, token, pipeline)
    if flags:
        flag_pipeline, flag_dir = flags[:2]
        content = FLAG_BLOCK.format(flag_dir=flag_dir)
        ensure_pipeline(url, token, flag_pipeline, "bfs_flag_blk", content)
    ensure_user(url, token, editor_email, editor_password)
    if len(flags) == 4:
        ensure_user(url, token, flags[2], flags[3], "Viewer")


if __name__ == "__main__":
    if len(sys.argv) not in (5, 7, 9):
        sys.exit(__doc__)
    main(*sys.argv[1:])
