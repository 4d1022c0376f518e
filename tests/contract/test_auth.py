"""Contract of MageClient's authentication: key + token, JWT reduction, login, actionable refusals."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from backfill_sync.client import Backoff, MageClient
from backfill_sync.errors import AuthError, ConnectionFailed, MageError
from backfill_sync.models import MageConnection
from tests.contract.servers import EMULATOR_PIPELINE, MageServer, log_in_jwt

BAD_KEY = "hc-secret-api-key-0451"
BAD_TOKEN = "hc-secret-token-0452"
BAD_PASSWORD = "hc-secret-password-0453"


def no_sleep(seconds: float) -> None:
    pass


def failure_of(connection: MageConnection, pipeline_uuid: str) -> MageError:
    backoff = Backoff(sleep=no_sleep)
    with (
        MageClient(connection, timeout=10.0, retries=1, backoff=backoff) as api,
        pytest.raises(MageError) as caught,
    ):
        api.list_backfills(pipeline_uuid)
    return caught.value


def test_login_with_email_and_password_lists(client: MageClient, mage_server: MageServer):
    assert isinstance(client.list_backfills(mage_server.pipeline_uuid), list)


def test_a_jwt_given_as_token_is_reduced_to_its_raw_claim(mage_server: MageServer, role: str):
    who = mage_server.owner if role == "owner" else mage_server.editor
    jwt = log_in_jwt(mage_server, who)
    connection = MageConnection(url=mage_server.url, token=jwt)
    with MageClient(connection) as api:
        assert isinstance(api.list_backfills(mage_server.pipeline_uuid), list)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({"api_key": BAD_KEY}, "refused the API key", id="wrong-api-key"),
        pytest.param({"token": BAD_TOKEN}, "refused the token", id="bad-token"),
        pytest.param({"password": BAD_PASSWORD}, "wrong email or password", id="wrong-password"),
        pytest.param({"email": None, "password": None}, "no user credentials: set MAGE_TOKEN", id="no-token"),
    ],
)
def test_refusals_are_auth_errors_that_say_what_to_fix(mage_server: MageServer, overrides, expected):
    error = failure_of(mage_server.connection("owner", **overrides), mage_server.pipeline_uuid)
    assert isinstance(error, AuthError)
    assert expected in str(error)


@pytest.mark.parametrize(
    ("overrides", "fix"),
    [
        pytest.param({"api_key": BAD_KEY}, "check MAGE_API_KEY (--api-key): ", id="wrong-api-key"),
        pytest.param({"token": BAD_TOKEN}, "check MAGE_TOKEN (--token), or log in with ", id="bad-token"),
        pytest.param(
            {"password": BAD_PASSWORD},
            "check MAGE_EMAIL and MAGE_PASSWORD (--email/--password): ",
            id="wrong-password",
        ),
        pytest.param(
            {"email": None, "password": None},
            "no user credentials: set MAGE_TOKEN (--token), or MAGE_EMAIL and MAGE_PASSWORD",
            id="no-token",
        ),
        pytest.param(
            {"password": None}, "set both MAGE_EMAIL and MAGE_PASSWORD", id="email-without-password"
        ),
    ],
)
def test_a_refusal_says_first_what_to_set_then_what_mage_said(mage_server: MageServer, overrides, fix: str):
    error = failure_of(mage_server.connection("owner", **overrides), mage_server.pipeline_uuid)
    assert str(error).startswith(fix)


def test_a_url_that_is_not_mage_is_not_reported_as_a_wrong_password(mage_server: MageServer):
    # /api below the server answers 404 without a Mage error body: the URL is wrong, not the password.
    error = failure_of(
        mage_server.connection("owner", url=mage_server.url + "/api"), mage_server.pipeline_uuid
    )
    assert "wrong email or password" not in str(error)
    assert "is --url the address of the Mage server itself?" in str(error)


def test_no_secret_appears_in_any_output_of_failing_calls(
    mage_server: MageServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
):
    caplog.set_level(logging.DEBUG)
    good = mage_server.connection("owner")
    failures = [
        failure_of(replace(good, api_key=BAD_KEY), mage_server.pipeline_uuid),
        failure_of(replace(good, email=None, password=None, token=BAD_TOKEN), mage_server.pipeline_uuid),
        failure_of(replace(good, password=BAD_PASSWORD), mage_server.pipeline_uuid),
        failure_of(replace(good, url="http://127.0.0.1:9", token=BAD_TOKEN), mage_server.pipeline_uuid),
    ]
    assert isinstance(failures[-1], ConnectionFailed)
    texts = [str(error) for error in failures] + [repr(error) for error in failures]
    texts += [repr(replace(good, token=BAD_TOKEN, password=BAD_PASSWORD, api_key=BAD_KEY))]
    with MageClient(replace(good, token=BAD_TOKEN, api_key=BAD_KEY)) as api:
        texts.append(repr(api))
    captured = capsys.readouterr()
    texts += [captured.out, captured.err, caplog.text]
    everything = "\n".join(texts)
    for secret in (BAD_KEY, BAD_TOKEN, BAD_PASSWORD):
        assert secret not in everything


def test_authentication_off_needs_no_credentials(emulator_no_auth_url: str):
    connection = MageConnection(url=emulator_no_auth_url, api_key="")
    with MageClient(connection) as api:
        assert api.pipeline_exists(EMULATOR_PIPELINE)
        assert isinstance(api.list_backfills(EMULATOR_PIPELINE), list)
