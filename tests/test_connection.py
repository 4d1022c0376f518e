"""How the user said to reach Mage is checked before any request, without ever echoing a secret."""

from __future__ import annotations

import pytest

from backfill_sync.connection import build_connection
from backfill_sync.errors import UsageError

SECRET = "s3cr3t-T0ken"


def test_values_are_trimmed_and_the_slash_dropped():
    connection = build_connection(" http://mage:6789/ ", "key\n", SECRET + "\r\n", " me@x.org ", "pw ")
    assert (connection.url, connection.api_key, connection.token, connection.email) == (
        "http://mage:6789",
        "key",
        SECRET,
        "me@x.org",
    )
    assert connection.password == "pw "  # a password may really end in a space


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("127.0.0.1:6789", "must look like http://host:6789", id="no-scheme"),
        pytest.param("ftp://mage", "must look like http://host:6789", id="other-scheme"),
        pytest.param("http://bob:hunter2@mage:6789", "must not contain credentials", id="userinfo"),
        pytest.param("ftp://bob:hunter2@mage", "got 'ftp://\\*\\*\\*@mage'", id="other-scheme-with-password"),
        pytest.param("ftp://bob:hun/ter2@mage", "got 'ftp://\\*\\*\\*@mage'", id="password-with-a-slash"),
        pytest.param("bob:hunter2@mage:6789", "got '\\*\\*\\*@mage:6789'", id="no-scheme-with-password"),
        pytest.param("http://[::1:6789", "must look like http://host:6789", id="unclosed-ipv6"),
        pytest.param("http://mage:99999999", "must look like http://host:6789", id="port-out-of-range"),
        pytest.param("http://mage\x1b[2J", r"got 'http://mage\\x1b\[2J'", id="control-characters-escaped"),
    ],
)
def test_bad_urls_are_usage_errors(url, message):
    with pytest.raises(UsageError, match=message) as caught:
        build_connection(url, "key", None, None, None)
    assert "hunter2" not in str(caught.value)
    assert "hun/ter2" not in str(caught.value)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(SECRET + "\tx", id="tab-inside"),
        pytest.param("tök" + SECRET, id="non-ascii"),
        pytest.param(SECRET + " x", id="space-inside"),
    ],
)
def test_unsendable_tokens_are_refused_without_showing_them(token):
    with pytest.raises(UsageError, match="value not shown") as caught:
        build_connection("http://mage:6789", "key", token, None, None)
    assert SECRET not in str(caught.value)


def test_a_blank_token_means_no_token():
    assert build_connection("http://mage:6789", "key", "  ", None, None).token is None
