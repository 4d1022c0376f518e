"""MageSession against servers that misbehave: a malformed answer is one error naming the request, and
a login survives a blip.

The server is tests/hostile_server.py on loopback.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from backfill_sync.client import Backoff, MageClient
from backfill_sync.errors import MageError, MalformedAnswer
from backfill_sync.models import MageConnection
from backfill_sync.transport import MAX_JSON_DEPTH
from tests.hostile_server import PIPELINE, RAW_TOKEN, Exchange, HostileServer, listing, mage_row

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
