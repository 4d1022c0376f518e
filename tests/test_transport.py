"""MageSession against servers that misbehave: each answer bounded in time and size, listings bounded by
their own count, malformed answers named, logins retried, credentials never quoted back.

The server is tests/hostile_server.py on loopback; timeouts are small ones passed in, and what is
asserted is what happened (errors, request counts, bytes sent), never how long it took.
"""

from __future__ import annotations

import itertools
import json
import socket
import socketserver
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from backfill_sync.client import Backoff, MageClient
from backfill_sync.errors import ApiError, ConnectionFailed, MageError, MalformedAnswer
from backfill_sync.listing import MAX_LISTING_ROWS
from backfill_sync.models import MageConnection
from backfill_sync.transport import MAX_JSON_DEPTH
from tests.hostile_server import PIPELINE, RAW_TOKEN, Exchange, HostileServer, listing, mage_row, repeat
from tests.loopback import serving

TOKEN = "hostile-user-token-0462"
API_KEY = "hostile-api-key-0463"
PASSWORD = 'pa"ss/wörd+0465'
LIST = r"^/api/backfills$"


def no_sleep(seconds: float) -> None:
    pass


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer() as running:
        yield running


def client_of(server: HostileServer, *, timeout: float = 5.0, login: bool = False, **kw: Any) -> MageClient:
    if login:
        connection = MageConnection(
            url=server.url, api_key=API_KEY, email="me@example.com", password=PASSWORD
        )
    else:
        connection = MageConnection(url=server.url, api_key=API_KEY, token=TOKEN)
    return MageClient(connection, timeout=timeout, backoff=Backoff(sleep=no_sleep), **kw)


# -- 2. nothing hangs ----------------------------------------------------------------------------------


def test_a_body_that_trickles_is_given_up_at_the_request_timeout(server: HostileServer):
    sent: list[int] = []
    total = 400

    def trickle(exchange: Exchange) -> None:
        exchange.stream(repeat(b" ", total), headers={"Content-Length": str(total)}, pause=0.05)
        sent.append(exchange.sent[0])

    server.on("GET", LIST, trickle)
    with client_of(server, timeout=0.3) as api, pytest.raises(ConnectionFailed) as caught:
        api.list_backfills(PIPELINE)
    message = str(caught.value)
    assert message.startswith("check MAGE_URL (--url), or give Mage more time with MAGE_REQUEST_TIMEOUT")
    assert "now 0.3 s" in message
    assert "still coming after 0.3 s" in message  # why the last try failed
    assert 1 <= server.count("GET", LIST) <= 4
    server.wait_idle()
    assert sent
    assert all(count < total for count in sent)  # each attempt stopped reading long before the end


def test_headers_that_trickle_are_given_up_at_the_request_timeout(server: HostileServer):
    sent: list[int] = []
    total = 400  # 20 s of header at one byte per 0.05 s, each byte well inside the read timeout

    def trickle(exchange: Exchange) -> None:
        exchange.trickle_head(total, pause=0.05)
        sent.append(exchange.sent[0])

    server.on("GET", LIST, trickle)
    with client_of(server, timeout=0.3) as api, pytest.raises(ConnectionFailed) as caught:
        api.list_backfills(PIPELINE)
    message = str(caught.value)
    assert "now 0.3 s" in message
    assert message.startswith("check MAGE_URL (--url), or give Mage more time with MAGE_REQUEST_TIMEOUT")
    assert "no complete answer within 0.3 s" in message  # why the last try failed
    assert 1 <= server.count("GET", LIST) <= 4
    server.wait_idle()
    assert sent
    assert all(count < total for count in sent)  # each attempt stopped waiting long before the end


def test_a_listing_whose_next_never_ends_is_refused_after_the_pages_its_count_allows(server: HostileServer):
    ids = itertools.count(1)

    def endless(exchange: Exchange) -> None:
        rows = [mage_row(next(ids), "n") for _ in range(2)]
        exchange.json(listing("backfills", rows, count=5, more=server.count("GET", LIST) < 50))

    server.on("GET", LIST, endless)
    with client_of(server, page_size=2) as api, pytest.raises(MalformedAnswer) as caught:
        api.list_backfills(PIPELINE)
    assert "did not end after 5 pages of 2 rows" in str(caught.value)
    assert "GET /api/backfills" in str(caught.value)
    assert server.count("GET", LIST) == 5  # ceil(5 / 2) + 2 spare pages


def test_the_same_page_forever_is_refused(server: HostileServer):
    def same(exchange: Exchange) -> None:
        rows = [mage_row(1, "a"), mage_row(2, "b")]
        exchange.json(listing("backfills", rows, count=2, more=server.count("GET", LIST) < 50))

    server.on("GET", LIST, same)
    with client_of(server, page_size=2) as api, pytest.raises(MalformedAnswer, match="did not end after 3"):
        api.list_backfills(PIPELINE)
    assert server.count("GET", LIST) == 3


def test_a_pipelines_listing_that_never_ends_is_refused(server: HostileServer):
    def endless(exchange: Exchange) -> None:
        offset = int(exchange.first("_offset", "0") or 0)
        more = server.count("GET", r"^/api/pipelines$") < 50
        exchange.json(listing("pipelines", [{"uuid": f"p{offset}"}], count=1, more=more))

    server.on("GET", r"^/api/pipelines$", endless)
    with client_of(server) as api, pytest.raises(MalformedAnswer, match="GET /api/pipelines"):
        api.list_pipeline_uuids()
    assert server.count("GET", r"^/api/pipelines$") == 3


def test_after_three_request_timeouts_without_an_answer_nothing_more_is_sent(server: HostileServer):
    server.on("GET", r"^/api/backfills/\d+$", lambda exchange: exchange.hang())
    with client_of(server, timeout=0.3) as api, pytest.raises(ConnectionFailed):
        api.poll_backfills(list(range(1, 9)))
    # Without the cut-off: 8 backfills x 4 attempts. With it, each of the 4 threads stops once Mage has
    # been silent for 3 timeouts, and the backfills not yet read are never asked for.
    assert server.count("GET", r"^/api/backfills/\d+$") <= 16


def test_a_refused_connection_says_to_check_the_url_first():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connection = MageConnection(url=f"http://127.0.0.1:{port}", token=TOKEN)
    with (
        MageClient(connection, backoff=Backoff(sleep=no_sleep)) as api,
        pytest.raises(ConnectionFailed) as caught,
    ):
        api.list_backfills(PIPELINE)
    assert str(caught.value).startswith(
        f"check MAGE_URL (--url): cannot reach Mage at http://127.0.0.1:{port}"
    )


# -- 3. bounded memory ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "declared", [pytest.param(True, id="with-length"), pytest.param(False, id="chunked")]
)
def test_a_200_mb_body_is_refused_without_being_read(server: HostileServer, declared: bool):
    total = 200 * 1024 * 1024
    sent: list[int] = []

    def huge(exchange: Exchange) -> None:
        headers = {"Content-Length": str(total)} if declared else {}
        exchange.stream(repeat(b" " * 65536, total), headers=headers)
        sent.append(exchange.sent[0])

    server.on("GET", LIST, huge)
    with client_of(server) as api, pytest.raises(MalformedAnswer) as caught:
        api.list_backfills(PIPELINE)
    assert "64 MiB backfill-sync reads" in str(caught.value)
    assert server.count("GET", LIST) == 1  # not retried: it would be as large again
    server.wait_idle()
    assert sent and sent[0] < total


def test_700_000_rows_in_one_answer_are_refused_under_the_size_cap(server: HostileServer):
    rows = 700_000
    row = json.dumps(mage_row(1, "reload-eu-2024-q1", variables={"region": "eu"})).encode()
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        yield b'{"backfills": ['
        page = b",".join([row] * 1000) + b","
        for _ in range(rows // 1000):
            yield page
        yield b'{}], "metadata": {"count": 700001, "next": false}}'

    def big(exchange: Exchange) -> None:
        exchange.stream(chunks())
        sent.append(exchange.sent[0])

    server.on("GET", LIST, big)
    with client_of(server) as api, pytest.raises(MalformedAnswer, match="larger than the 64 MiB"):
        api.list_backfills(PIPELINE)
    server.wait_idle()
    assert sent and sent[0] < rows * len(row)


def test_a_listing_that_says_it_holds_700_000_rows_is_refused_at_its_first_page(server: HostileServer):
    def claims(exchange: Exchange) -> None:
        exchange.json(listing("backfills", [mage_row(1, "a")], count=700_000, more=True))

    server.on("GET", LIST, claims)
    with client_of(server) as api, pytest.raises(MalformedAnswer) as caught:
        api.list_backfills(PIPELINE)
    assert f"reads at most {MAX_LISTING_ROWS}" in str(caught.value)
    assert server.count("GET", LIST) == 1


def test_a_gzip_bomb_is_refused_once_its_inflated_size_passes_the_cap(server: HostileServer):
    inflated = 1024 * 1024 * 1024
    sent: list[int] = []

    def bomb() -> Iterator[bytes]:
        # 1 GiB of JSON-ish text, compressed on the fly: about 1 MB on the wire in all.
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        yield packer.compress(b'{"backfills": "')
        for chunk in repeat(b"a" * (1024 * 1024), inflated):
            yield packer.compress(chunk)
        yield packer.flush()

    def answer(exchange: Exchange) -> None:
        exchange.stream(bomb(), headers={"Content-Encoding": "gzip"})
        sent.append(exchange.sent[0])

    server.on("GET", LIST, answer)
    with client_of(server) as api, pytest.raises(MalformedAnswer, match="larger than the 64 MiB"):
        api.list_backfills(PIPELINE)
    server.wait_idle()
    assert sent and sent[0] < inflated // 1000  # gave up on it long before its end


# -- 6. malformed answers are errors naming the request ------------------------------------------------

NESTED = 1
for _ in range(MAX_JSON_DEPTH + 5):
    NESTED = [NESTED]  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        pytest.param(
            {"backfills": "rows", "metadata": {"count": 1}},
            "backfills is str 'rows', not a list",
            id="string",
        ),
        pytest.param(
            {"backfills": [], "metadata": [1]}, "metadata is a JSON list, not an object", id="metadata-list"
        ),
        pytest.param({"backfills": []}, "metadata is missing or null, not an object", id="no-metadata"),
        pytest.param(
            {"backfills": [], "metadata": {"next": False}}, "metadata.count is missing", id="no-count"
        ),
        pytest.param(
            listing("backfills", [mage_row("7", "a")]),
            "backfills[0]: id is str '7', not an integer",
            id="id-str",
        ),
        pytest.param(
            listing("backfills", [mage_row(True, "a")]), "id is bool True, not an integer", id="id-bool"
        ),
        pytest.param(listing("backfills", [{"name": "a"}]), "backfills[0]: id is missing", id="id-missing"),
        pytest.param(
            listing("backfills", [mage_row(1, "a"), None]),
            "backfills[1]: a row is missing or null",
            id="null-row",
        ),
        pytest.param(listing("backfills", ["row"]), "a row is str 'row', not an object", id="string-row"),
        pytest.param(
            listing("backfills", [mage_row(1, "a", start_datetime="0001-01-01 00:00:00+01:00")]),
            "start_datetime '0001-01-01 00:00:00+01:00' lies outside the years 1 to 9999",
            id="before-year-1",
        ),
        pytest.param(
            listing("backfills", [mage_row(1, "a", end_datetime="9999-12-31T23:00:00-02:00")]),
            "end_datetime '9999-12-31T23:00:00-02:00' lies outside the years 1 to 9999",
            id="after-year-9999",
        ),
        pytest.param(
            listing("backfills", [mage_row(1, "a", variables={"deep": NESTED})]),
            f"nested more than {MAX_JSON_DEPTH} levels deep",
            id="deep",
        ),
    ],
)
def test_a_malformed_listing_is_one_error_naming_the_request(server: HostileServer, page: Any, expected: str):
    server.on("GET", LIST, lambda exchange: exchange.json(page))
    with client_of(server) as api, pytest.raises(MalformedAnswer) as caught:
        api.list_backfills(PIPELINE)
    message = str(caught.value)
    assert (
        f"Mage at {server.url} answered GET /api/backfills with an answer backfill-sync cannot read"
        in message
    )
    assert expected in message


def test_json_too_deep_for_python_itself_is_a_malformed_answer(server: HostileServer):
    depth = 200_000
    body = b'{"backfills": ' + b"[" * depth + b"]" * depth + b', "metadata": {"count": 0}}'
    server.on("GET", LIST, lambda exchange: exchange.raw(body))
    with client_of(server) as api, pytest.raises(MalformedAnswer, match="nested too deeply"):
        api.list_backfills(PIPELINE)


@pytest.mark.parametrize(
    ("path", "answer", "call", "expected"),
    [
        pytest.param(
            r"^/api/backfills/1$",
            {"backfill": [1]},
            lambda api: api.get_backfill(1),
            "GET /api/backfills/1 with an answer backfill-sync cannot read: backfill is a JSON list",
            id="backfill-detail",
        ),
        pytest.param(
            r"^/api/pipeline_runs$",
            listing("pipeline_runs", [{"id": None, "status": "failed"}]),
            lambda api: api.runs.list_runs(1),
            "GET /api/pipeline_runs with an answer backfill-sync cannot read: "
            "pipeline_runs[0]: id is missing",
            id="run-listing",
        ),
        pytest.param(
            r"^/api/pipeline_runs$",
            {"pipeline_runs": [], "metadata": [7]},
            lambda api: api.count_runs(1),
            "GET /api/pipeline_runs with an answer backfill-sync cannot read: metadata is a JSON list",
            id="run-count",
        ),
        pytest.param(
            r"^/api/pipeline_schedules/3$",
            {"pipeline_schedule": "active"},
            lambda api: api.runs.get_trigger(3),
            "pipeline_schedule is str 'active', not an object",
            id="trigger",
        ),
    ],
)
def test_other_malformed_answers_name_their_request(server: HostileServer, path, answer, call, expected):
    server.on("GET", path, lambda exchange: exchange.json(answer))
    with client_of(server) as api, pytest.raises(MalformedAnswer) as caught:
        call(api)
    assert expected in str(caught.value)


# -- 9. a login survives a blip ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "blip",
    [
        pytest.param(lambda exchange: exchange.raw(b"busy", status=503), id="503"),
        pytest.param(lambda exchange: exchange.raw(b"", status=429, headers={"Retry-After": "1"}), id="429"),
        pytest.param(lambda exchange: exchange.drop(), id="dropped-connection"),
    ],
)
def test_a_login_is_retried_like_any_safe_request(server: HostileServer, blip):
    def once(exchange: Exchange) -> None:
        if server.count("POST", r"^/api/sessions$") == 1:
            blip(exchange)
        else:
            server._like_mage(exchange)

    server.on("POST", r"^/api/sessions$", once)
    with client_of(server, login=True) as api:
        assert api.list_backfills(PIPELINE) == []
    assert server.count("POST", r"^/api/sessions$") == 2
    listed = [seen for seen in server.seen if seen.path == "/api/backfills"]
    assert listed[0].headers["authorization"] == f"Bearer {RAW_TOKEN}"


def test_a_login_mage_keeps_failing_is_not_blamed_on_the_url(server: HostileServer):
    server.on("POST", r"^/api/sessions$", lambda exchange: exchange.raw(b"busy", status=503))
    with client_of(server, login=True) as api, pytest.raises(MageError) as caught:
        api.list_backfills(PIPELINE)
    assert "failed the login" in str(caught.value)
    assert "is --url the address" not in str(caught.value)
    assert server.count("POST", r"^/api/sessions$") == 4


# -- 5. no credential in any message -------------------------------------------------------------------


def echo_headers(exchange: Exchange) -> None:
    """An error body quoting the request, as a debugging proxy or middleware might."""
    seen = json.dumps(exchange.headers) + " " + exchange.body.decode("utf-8", "replace")
    exchange.json(
        {"error": {"code": 500, "type": f"bad {seen}", "message": seen, "exception": f"failed: {seen}"}}
    )


@pytest.mark.parametrize("login", [pytest.param(False, id="token"), pytest.param(True, id="login")])
@pytest.mark.parametrize("where", ["type", "exception"])
def test_an_error_that_echoes_the_request_shows_no_credential(server: HostileServer, login: bool, where: str):
    def echo(exchange: Exchange) -> None:
        seen = json.dumps(exchange.headers)
        error: dict[str, Any] = {"code": 500, "type": "boom", "exception": "failed"}
        error[where] = f"{error[where]}: {seen}"
        exchange.json({"error": error})

    server.on("GET", LIST, echo)
    with client_of(server, login=login) as api, pytest.raises(ApiError) as caught:
        api.list_backfills(PIPELINE)
    text = str(caught.value) + repr(caught.value.__dict__)
    assert "***" in text
    for secret in (TOKEN, API_KEY, RAW_TOKEN, PASSWORD):
        assert secret not in text


def test_a_failed_login_that_echoes_the_password_shows_it_in_no_form(server: HostileServer):
    server.on("POST", r"^/api/sessions$", echo_headers)
    with client_of(server, login=True) as api, pytest.raises(MageError) as caught:
        api.list_backfills(PIPELINE)
    text = str(caught.value)
    for form in (PASSWORD, json.dumps(PASSWORD)[1:-1], API_KEY):
        assert form not in text
    assert "***" in text


def test_a_long_or_unprintable_error_detail_is_shortened_and_escaped(server: HostileServer):
    detail = "\x1b[2J\n::error::pwned " + "x" * 5000
    server.on("GET", LIST, lambda exchange: exchange.json({"error": {"code": 500, "exception": detail}}))
    with client_of(server) as api, pytest.raises(ApiError) as caught:
        api.list_backfills(PIPELINE)
    message = str(caught.value)
    assert "\x1b" not in message
    assert "\\x1b[2J" in message
    assert len(message) < 1000


# -- behind a proxy ------------------------------------------------------------------------------------


class _Proxy(socketserver.ThreadingTCPServer):
    """An HTTP proxy stand-in on loopback: records each request line and answers it itself."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.request_lines: list[str] = []


class _ProxyHandler(socketserver.StreamRequestHandler):
    server: _Proxy

    def handle(self) -> None:
        line = self.rfile.readline().decode("latin-1").strip()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # the rest of the head
        self.server.request_lines.append(line)
        body = json.dumps({"backfills": [], "metadata": {"count": 0, "next": False}}).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.wfile.write(head.encode() + b"Connection: close\r\n\r\n" + body)


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    with serving(_Proxy()) as server:
        yield server


def test_requests_go_through_the_proxy_the_environment_names(proxy: _Proxy, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
    connection = MageConnection(url="http://mage.invalid:6789", api_key=API_KEY, token=TOKEN)
    with MageClient(connection, timeout=5.0, backoff=Backoff(sleep=no_sleep)) as api:
        assert api.list_backfills(PIPELINE) == []
    assert proxy.request_lines
    assert proxy.request_lines[0].startswith("GET http://mage.invalid:6789/api/backfills?")
