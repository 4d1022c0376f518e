"""Auth as Mage 0.9.80 does it (mage-api.md §4.1): key + token, sessions, roles, hazard 4."""

from __future__ import annotations

import pytest

from backfill_sync.emulator import EmulatorConfig, EmulatorServer
from tests.emulator.conftest import PIPELINE
from tests.emulator_http import API_KEY, Api, call, jwt_payload, login

LIST = "/api/backfills?_limit=2"


def test_no_key_is_a_real_401(server):
    answer = call(server.url, "GET", LIST)
    assert answer.status == 401
    assert answer.body == {
        "error": {"code": 401, "message": "Invalid API key.", "type": "invalid_api_key"},
        "status": 200,
    }


def test_key_without_token_is_a_403_in_a_200(server):
    answer = call(server.url, "GET", f"{LIST}&api_key={API_KEY}")
    assert answer.status == 200
    assert answer.error == {
        "code": 403,
        "message": "Private access for list only, invalid scope.",
        "type": "unauthorized_access",
    }


def test_login_hands_out_a_jwt_around_the_raw_token(server):
    answer = call(
        server.url,
        "POST",
        "/api/sessions",
        {"api_key": API_KEY, "session": {"email": "admin@admin.com", "password": "admin"}},
    )
    session = answer.body["session"]
    claims = jwt_payload(session["token"])
    assert set(claims) == {"expires", "token"}
    assert session["token"].startswith("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.")
    assert session["user"]["owner"] is True
    assert len(session["expires"]) == len("2026-12-22 20:06:38.653936")


@pytest.mark.parametrize(
    ("how", "status", "error_type"),
    [
        pytest.param("bearer-raw", 200, None, id="bearer-raw"),
        pytest.param("oauth-token-header", 200, None, id="oauth-token-header"),
        pytest.param("cookie-jwt", 200, None, id="cookie-jwt"),
        pytest.param("cookie-jwt-query-key", 200, None, id="cookie-jwt-query-key"),
        pytest.param("bearer-jwt", 401, "invalid_oauth_token", id="bearer-jwt-is-401"),
        pytest.param("bearer-raw-no-key", 401, "invalid_api_key", id="bearer-without-key"),
        pytest.param("bearer-garbage", 401, "invalid_oauth_token", id="bearer-garbage"),
        pytest.param("wrong-key", 401, "invalid_api_key", id="wrong-key-valid-bearer"),
    ],
)
def test_token_presentations(server, how, status, error_type):
    session = call(
        server.url,
        "POST",
        "/api/sessions",
        {"api_key": API_KEY, "session": {"email": "admin", "password": "admin"}},
    ).body["session"]
    jwt = session["token"]
    raw = jwt_payload(jwt)["token"]
    path = LIST
    headers = {
        "bearer-raw": {"X-API-KEY": API_KEY, "Authorization": f"Bearer {raw}"},
        "oauth-token-header": {"X-API-KEY": API_KEY, "OAUTH-TOKEN": raw},
        "cookie-jwt": {"X-API-KEY": API_KEY, "Cookie": f"oauth_token={jwt}"},
        "cookie-jwt-query-key": {"Cookie": f"oauth_token={jwt}"},
        "bearer-jwt": {"X-API-KEY": API_KEY, "Authorization": f"Bearer {jwt}"},
        "bearer-raw-no-key": {"Authorization": f"Bearer {raw}"},
        "bearer-garbage": {"X-API-KEY": API_KEY, "Authorization": "Bearer garbage"},
        "wrong-key": {"X-API-KEY": "wrong", "Authorization": f"Bearer {raw}"},
    }[how]
    if how == "cookie-jwt-query-key":
        path = f"{LIST}&api_key={API_KEY}"
    answer = call(server.url, "GET", path, headers=headers)
    assert answer.status == status
    if error_type is None:
        assert answer.body == {"backfills": [], "metadata": {"count": 0, "next": False}}
    else:
        assert answer.error["type"] == error_type


def test_post_reads_the_key_from_the_body_not_the_query(server, owner):
    bearer = {"Authorization": f"Bearer {owner.token}"}
    in_query = call(
        server.url, "POST", f"/api/pipelines/{PIPELINE}/backfills?api_key={API_KEY}", {"backfill": {}}, bearer
    )
    assert in_query.status == 401
    in_body = call(
        server.url,
        "POST",
        f"/api/pipelines/{PIPELINE}/backfills",
        {"api_key": API_KEY, "backfill": {}},
        bearer,
    )
    assert in_body.status == 200
    assert in_body.error is None
    put_body_key = call(server.url, "PUT", "/api/backfills/1", {"api_key": API_KEY, "backfill": {}}, bearer)
    assert put_body_key.status == 401


def test_bad_password_and_missing_key_on_login(server):
    bad = call(
        server.url,
        "POST",
        "/api/sessions",
        {"session": {"email": "admin@admin.com", "password": "no"}},
        {"X-API-KEY": API_KEY},
    )
    assert (bad.status, bad.error) == (
        200,
        {"code": 404, "message": "Email/username and/or password invalid.", "type": "record_not_found"},
    )
    no_key = call(
        server.url, "POST", "/api/sessions", {"session": {"email": "admin@admin.com", "password": "admin"}}
    )
    assert no_key.status == 401


def test_a_login_rewrites_every_later_404_message():
    """Hazard 4: SessionResource.create mutates the shared 404 dict, whether the login succeeds or not."""
    with EmulatorServer(EmulatorConfig(auth_on=False)) as server:
        assert call(server.url, "GET", "/api/backfills/999").error["message"] == "Record not found."
        failed = call(server.url, "POST", "/api/sessions", {"session": {"email": "admin", "password": "no"}})
        assert failed.error["type"] == "record_not_found"
        after = call(server.url, "GET", "/api/backfills/999").error
        assert after == {
            "code": 404,
            "message": "Email/username and/or password invalid.",
            "type": "record_not_found",
        }


def test_http_error_codes_flag_makes_handled_errors_real(owner):
    answer = owner.get("/api/backfills/999?_http_error_codes=true")
    assert answer.status == 404
    assert answer.body["status"] == 404
    assert answer.error["type"] == "record_not_found"


def test_editor_may_create_with_a_name_only(editor):
    dated = editor(
        "POST",
        f"/api/pipelines/{PIPELINE}/backfills",
        {"backfill": {"name": "n", "start_datetime": "2024-01-01"}},
    )
    assert dated.error == {
        "code": 403,
        "message": "write of start_datetime on create is disabled for backfills.",
        "type": "unauthorized_access",
    }
    named = editor.create(PIPELINE, name="n")
    assert editor.put(named["id"], start_datetime="2024-01-01", interval_type="day").error is None


def test_editor_gets_403_for_unknown_keys_and_query_params(editor, owner):
    created = owner.create(PIPELINE, name="n")
    unknown_key = editor.put(created["id"], foo="bar", name="x")
    assert unknown_key.error["message"] == "write of foo on update is disabled for backfills."
    unknown_query = editor.get("/api/backfills?unknown_q=1")
    assert unknown_query.error["message"] == (
        "Query parameter unknown_q of value ['1'] is not permitted on list operation for backfills."
    )
    allowed = editor.get(f"/api/backfills?include_run_count=true&pipeline_uuid={PIPELINE}&_limit=5")
    assert allowed.error is None
    assert owner.get("/api/backfills?unknown_q=1").error is None
    assert owner.put(created["id"], foo="bar", name="y").body["backfill"]["name"] == "y"


def test_viewer_may_read_but_not_write(server, owner):
    viewer = Api(server.url, login(server.url, "viewer@example.com", "viewer"))
    assert viewer.get("/api/backfills").error is None
    answer = viewer("POST", f"/api/pipelines/{PIPELINE}/backfills", {"backfill": {"name": "n"}})
    assert answer.error["message"] == "Unauthorized operation create on backfills, failed condition."


def test_no_auth_needs_nothing_and_ignores_wrong_credentials():
    with EmulatorServer(EmulatorConfig(pipelines=(PIPELINE,), auth_on=False)) as server:
        assert call(server.url, "GET", LIST).body == {
            "backfills": [],
            "metadata": {"count": 0, "next": False},
        }
        wrong = call(server.url, "GET", f"{LIST}&api_key=wrong", headers={"Authorization": "Bearer garbage"})
        assert wrong.status == 200
        assert wrong.error is None
        created = call(
            server.url, "POST", f"/api/pipelines/{PIPELINE}/backfills", {"backfill": {"name": "n", "foo": 1}}
        )
        assert created.body["backfill"]["name"] == "n"
        assert login(server.url, "admin@admin.com", "admin")
