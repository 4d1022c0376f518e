"""The commands against a hostile Mage (tests/hostile_server.py), end to end: what reaches stdout and
stderr is escaped and holds no credential, malformed answers and foreign rows are clear errors, and
--request-timeout / MAGE_REQUEST_TIMEOUT bound what a silent server can cost."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backfill_sync.cli import main
from tests.hostile_server import PIPELINE, RAW_TOKEN, Exchange, HostileServer, listing, mage_row

TOKEN = "hostile-cli-token-0471"
API_KEY = "hostile-cli-api-key-0472"
PASSWORD = "hostile-cli-password-0473"
LIST = r"^/api/backfills$"

MANIFEST = f"""\
pipeline_uuid: {PIPELINE}
backfills:
  - name: reload
    start_datetime: '2024-01-01T00:00:00Z'
    end_datetime: '2024-01-03T00:00:00Z'
    interval_type: day
    interval_units: 1
"""

# Names and statuses a hostile server might send: a terminal escape, a GitHub workflow command on a
# line of its own, a bidi override, and a lone surrogate (which cannot even be encoded for output).
HOSTILE_NAMES = ["\x1b[31mred\x1b[0m", "x\n::error::pwned", "abc\u202edcba", "lone\ud800"]


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def everything(self) -> str:
        return self.out + self.err


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as running:
        yield running


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    backfills = tmp_path / "backfills"
    backfills.mkdir()
    (backfills / f"{PIPELINE}.yaml").write_text(MANIFEST, encoding="utf-8")
    return backfills


@pytest.fixture
def cli(
    server: HostileServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Ran]:
    monkeypatch.setenv("MAGE_URL", server.url)
    monkeypatch.setenv("MAGE_TOKEN", TOKEN)
    monkeypatch.setenv("MAGE_API_KEY", API_KEY)
    for name in ("MAGE_EMAIL", "MAGE_PASSWORD", "MAGE_REQUEST_TIMEOUT", "GITHUB_ACTIONS"):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> Ran:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


def assert_safe_to_print(ran: Ran) -> None:
    text = ran.everything
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert not any(line.lstrip().startswith("::") for line in text.splitlines())
    text.encode("utf-8")  # a lone surrogate would fail here, as it would on a real stdout


# -- 10. server text printed is escaped ----------------------------------------------------------------


def hostile_rows() -> list[dict[str, Any]]:
    rows = [mage_row(10 + n, name) for n, name in enumerate(HOSTILE_NAMES)]
    rows.append(mage_row(20, "status", status="\x1b[2J\n::error::status"))
    return rows


@pytest.mark.parametrize("output_format", ["text", "markdown", "json"])
def test_plan_escapes_the_names_and_statuses_mage_sends(server, cli, folder: Path, output_format: str):
    server.on("GET", LIST, lambda exchange: exchange.json(listing("backfills", hostile_rows())))
    ran = cli("plan", "--format", output_format, str(folder))
    assert ran.code == 0, ran.err
    assert_safe_to_print(ran)
    if output_format == "json":
        unmanaged = json.loads(ran.out)["pipelines"][0]["unmanaged"]
        assert {row["name"] for row in unmanaged} >= set(HOSTILE_NAMES[:3])  # the data itself is intact
    else:
        assert '"\\u001b[31mred\\u001b[0m"' in ran.out  # names are shown as JSON strings
        assert '"x\\n::error::pwned"' in ran.out
        assert "(\\x1b[2J\\n::error::status)" in ran.out


@pytest.mark.parametrize("output_format", ["text", "markdown", "json"])
def test_status_escapes_the_names_mage_sends(server, cli, folder: Path, output_format: str):
    server.on("GET", LIST, lambda exchange: exchange.json(listing("backfills", hostile_rows())))
    ran = cli("status", "--all", "--format", output_format, str(folder))
    assert ran.code == 0, ran.err
    assert_safe_to_print(ran)
    if output_format == "text":
        assert f"{PIPELINE}/x\\n::error::pwned (id 11, unmanaged)" in ran.out


def test_import_escapes_a_pipeline_uuid_that_carries_a_workflow_command(server, cli, tmp_path: Path):
    uuid = "x\n::error file=README.md::pwned"
    server.pipelines.append(uuid)
    rows = [mage_row(1, "a", pipeline=uuid), mage_row(2, "\x1b]8;;http://evil\x07link", pipeline=PIPELINE)]
    server.on("GET", LIST, lambda exchange: exchange.json(listing("backfills", rows)))
    ran = cli("import", "--out-dir", str(tmp_path / "imported"))
    assert ran.code == 1  # the hostile pipeline is left out, and says so
    assert_safe_to_print(ran)
    assert "skipped pipeline x\\n::error file=README.md::pwned" in ran.err


def test_an_error_quoting_mage_is_printed_escaped(server, cli, folder: Path):
    error = {"code": 500, "exception": "boom\x1b[2J\r\n::error::injected"}
    server.on("GET", LIST, lambda exchange: exchange.json({"error": error}))
    ran = cli("plan", str(folder))
    assert ran.code == 1
    assert_safe_to_print(ran)
    assert "boom\\x1b[2J" in ran.err


# -- 5. no credential in any output -------------------------------------------------------------------


def echo_request(exchange: Exchange) -> None:
    """An error naming the request in every field, headers and body included."""
    seen = json.dumps(exchange.headers) + " " + exchange.body.decode("utf-8", "replace")
    exchange.json(
        {"error": {"code": 500, "type": f"t {seen}", "message": f"m {seen}", "exception": f"e {seen}"}}
    )


@pytest.mark.parametrize("login", [pytest.param(False, id="token"), pytest.param(True, id="login")])
@pytest.mark.parametrize("command", ["plan", "status"])
def test_an_error_echoing_the_request_leaks_no_credential(
    server, cli, folder: Path, monkeypatch: pytest.MonkeyPatch, login: bool, command: str
):
    if login:
        monkeypatch.delenv("MAGE_TOKEN")
        monkeypatch.setenv("MAGE_EMAIL", "me@example.com")
        monkeypatch.setenv("MAGE_PASSWORD", PASSWORD)
    server.on("GET", LIST, echo_request)
    ran = cli(command, str(folder))
    assert ran.code == 1
    assert "***" in ran.err
    for secret in (TOKEN, API_KEY, PASSWORD, RAW_TOKEN):
        assert secret not in ran.everything


def test_a_url_with_a_password_is_never_quoted_back(cli, folder: Path):
    ran = cli("plan", "--url", "ftp://alice:hunter2-0474@mage.example.com", str(folder))
    assert ran.code == 1
    assert "hunter2-0474" not in ran.everything
    assert "ftp://***@mage.example.com" in ran.err


# -- 11. a row of another pipeline --------------------------------------------------------------------


def test_a_row_of_another_pipeline_in_the_listing_is_an_error_not_an_update(server, cli, folder: Path):
    rows = [mage_row(5, "reload", pipeline="other_pipeline", start_datetime="2023-01-01 00:00:00")]
    server.on("GET", LIST, lambda exchange: exchange.json(listing("backfills", rows)))
    ran = cli("plan", "--format", "json", str(folder))
    assert ran.code == 1
    assert ran.out == ""
    assert "id 5 'reload' of pipeline 'other_pipeline'" in ran.err
    assert f"as backfills of {PIPELINE!r}" in ran.err
    applied = cli("apply", "--auto-approve", str(folder))
    assert applied.code == 1
    assert server.count("PUT", r".") == server.count("POST", r"/backfills") == 0


# -- 6. a malformed answer is an error, not a traceback -----------------------------------------------


def test_a_malformed_listing_ends_the_command_with_one_clear_error(server, cli, folder: Path):
    server.on("GET", LIST, lambda exchange: exchange.json({"backfills": [None], "metadata": {"count": 1}}))
    ran = cli("plan", str(folder))
    assert ran.code == 1
    assert ran.err.startswith(f"Error: Mage at {server.url} answered GET /api/backfills with an answer")
    assert "backfills[0]: a row is missing or null, not an object" in ran.err
    assert "Traceback" not in ran.err


# -- 2 and issue 11: timeouts, and messages that lead with the fix ------------------------------------


@pytest.mark.parametrize("how", ["option", "variable"])
def test_the_request_timeout_bounds_a_silent_server(
    server, cli, folder: Path, monkeypatch: pytest.MonkeyPatch, how: str
):
    server.on("GET", r"^/api/pipelines/", lambda exchange: exchange.hang())
    args = ["plan", str(folder)]
    if how == "option":
        args[1:1] = ["--request-timeout", "0.3"]
    else:
        monkeypatch.setenv("MAGE_REQUEST_TIMEOUT", "0.3")
    ran = cli(*args)
    assert ran.code == 1
    assert ran.err.startswith(
        "Error: check MAGE_URL (--url), or give Mage more time with MAGE_REQUEST_TIMEOUT "
        "(--request-timeout, now 0.3 s)"
    )
    assert 1 <= server.count("GET", r"^/api/pipelines/") <= 4


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_request_timeout_must_be_a_positive_number(cli, folder: Path, value: str):
    ran = cli("plan", "--request-timeout", value, str(folder))
    assert ran.code == 1
    assert "--request-timeout" in ran.err


def test_a_refused_connection_leads_with_the_url_to_check(cli, folder: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ran = cli("plan", "--url", f"http://127.0.0.1:{port}", str(folder))
    assert ran.code == 1
    assert ran.err.startswith(f"Error: check MAGE_URL (--url): cannot reach Mage at http://127.0.0.1:{port}")
