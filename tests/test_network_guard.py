"""The suite-wide guard in tests/conftest.py refuses addresses beyond loopback."""

from __future__ import annotations

import socket

import httpx
import pytest


def test_a_plain_socket_may_not_leave_the_machine() -> None:
    with socket.socket() as probe, pytest.raises(OSError, match="only talk to servers on loopback"):
        probe.connect(("192.0.2.1", 80))  # TEST-NET-1: refused before any packet is sent


def test_nor_may_the_http_client() -> None:
    with (
        httpx.Client() as client,
        pytest.raises(httpx.ConnectError, match="only talk to servers on loopback"),
    ):
        client.get("http://192.0.2.1/")
