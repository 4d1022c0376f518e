"""The /_emulator control endpoints: faults of every kind, the request log, reset."""

from __future__ import annotations

import http.client
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from backfill_sync.emulator.faults import FAULT_KINDS
from tests.emulator.conftest import PIPELINE
from tests.emulator_http import API_KEY


def add_fault(api, **spec):
    answer = api.control("POST", "faults", spec)
    assert answer.body == {"ok": True}


def test_status_fault_answers_once_with_retry_after(owner):
    add_fault(owner, method="GET", path="^/api/backfills$", kind="status", status=502, retry_after=0)
    first = owner.get("/api/backfills")
    assert (first.status, first.headers.get("retry-after")) == (502, "0")
    assert owner.get("/api/backfills").status == 200


def test_error_body_fault_changes_nothing(owner):
    error = {"code": 500, "exception": "boom", "message": "boom", "errors": []}
    add_fault(owner, method="POST", path="/backfills$", kind="error_body", error=error)
    answer = owner("POST", f"/api/pipelines/{PIPELINE}/backfills", {"backfill": {"name": "n"}})
    assert (answer.status, answer.body) == (200, {"error": error})
    assert owner.get("/api/backfills").body["metadata"]["count"] == 0


@pytest.mark.parametrize(("kind", "saved"), [("drop_before", 0), ("drop_after", 1)])
def test_dropped_connections(owner, kind, saved):
    add_fault(owner, method="POST", path="/backfills$", kind=kind)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        owner("POST", f"/api/pipelines/{PIPELINE}/backfills", {"backfill": {"name": "n"}})
    assert owner.get("/api/backfills").body["metadata"]["count"] == saved


def test_latency_fault_still_answers(owner):
    add_fault(owner, path="^/api/backfills$", kind="latency", seconds=0.2)
    assert owner.get("/api/backfills").error is None


def test_insert_backfills_fault_adds_rows_before_handling(owner):
    add_fault(owner, method="GET", path="^/api/backfills$", kind="insert_backfills", count=2, times=None)
    first = owner.get(f"/api/backfills?pipeline_uuid={PIPELINE}").body
    second = owner.get(f"/api/backfills?pipeline_uuid={PIPELINE}").body
    assert (first["metadata"]["count"], second["metadata"]["count"]) == (2, 4)
    assert {b["name"] for b in first["backfills"]} == {"inserted-1", "inserted-2"}
    assert first["backfills"][0]["interval_type"] == "day"
    owner.control("DELETE", "faults")
    assert owner.get("/api/backfills").body["metadata"]["count"] == 4


def test_fault_with_bad_spec_is_refused(owner):
    assert owner.control("POST", "faults", {"kind": "explode"}).status == 400


def test_request_log_has_no_bodies_or_credentials(server, owner):
    owner.get(f"/api/backfills?_limit=5&api_key={API_KEY}")
    owner("POST", f"/api/pipelines/{PIPELINE}/backfills", {"backfill": {"name": "secret-name"}})
    logged = owner.control("GET", "requests").body["requests"]
    assert logged[-2:] == [
        {"method": "GET", "path": "/api/backfills", "query": {"_limit": "5"}},
        {"method": "POST", "path": f"/api/pipelines/{PIPELINE}/backfills", "query": {}},
    ]
    assert "admin" not in str(logged)
    assert owner.token not in str(logged)
    assert API_KEY not in str(logged)


def test_reset_clears_backfills_runs_and_log_but_keeps_users_and_pipelines(owner):
    created = owner.create(PIPELINE, name="n")
    owner.put(
        created["id"],
        start_datetime="2024-01-01",
        end_datetime="2024-01-02",
        interval_type="day",
        interval_units=1,
    )
    owner.put(created["id"], status="initial")
    assert owner.control("POST", "reset").body == {"ok": True}
    assert owner.control("GET", "requests").body == {"requests": []}
    assert owner.get("/api/backfills").body["metadata"]["count"] == 0
    assert owner.get("/api/pipeline_runs").body["metadata"]["count"] == 0
    assert owner.create(PIPELINE, name="again")["id"] == 1


def test_keep_alive_connection_serves_several_requests(server, owner):
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        for _ in range(3):
            connection.request(
                "GET",
                "/api/backfills",
                headers={"X-API-KEY": API_KEY, "Authorization": f"Bearer {owner.token}"},
            )
            response = connection.getresponse()
            assert response.status == 200
            response.read()
    finally:
        connection.close()


def test_seed_stores_pipelines_and_backfills_as_the_api_would(owner):
    row = {
        "pipeline_uuid": "he_seeded",
        "name": "seeded",
        "start_datetime": "2024-01-01T00:00:00Z",
        "end_datetime": "2024-01-03",
        "interval_type": "day",
        "interval_units": 1,
        "variables": {"a": 1},
        "status": "running",
    }
    answer = owner.control("POST", "seed", {"pipelines": ["he_seeded"], "backfills": [row, row]})
    assert answer.body == {"ok": True, "ids": [1, 2]}
    listed = owner.get("/api/backfills?pipeline_uuid=he_seeded").body["backfills"]
    assert [(b["name"], b["status"], b["start_datetime"], b["interval_type"]) for b in listed] == [
        ("seeded", "running", "2024-01-01 00:00:00", "day")
    ] * 2
    assert "he_seeded" in {p["uuid"] for p in owner.get("/api/pipelines").body["pipelines"]}


def test_seed_refuses_what_the_api_would(owner):
    bad = {"pipeline_uuid": PIPELINE, "start_datetime": "not-a-date"}
    assert owner.control("POST", "seed", {"backfills": [bad]}).status == 400
    assert owner.get("/api/backfills").body["metadata"]["count"] == 0


# -- docs/emulator.md is what users learn the controls from: it must name every one, and only those -----

DOCS = Path(__file__).resolve().parents[2] / "docs" / "emulator.md"


def documented_endpoints() -> list[tuple[str, str]]:
    return re.findall(r"^\| `(GET|POST|DELETE) /_emulator/([a-z/]+)`", DOCS.read_text(), re.MULTILINE)


def test_the_docs_name_every_fault_kind():
    kinds = re.findall(r"^\| `([a-z_]+)` \|", DOCS.read_text(), re.MULTILINE)
    assert sorted(kinds) == sorted(FAULT_KINDS)


def test_every_documented_control_endpoint_answers(owner):
    endpoints = documented_endpoints()
    assert len(endpoints) == 8
    for method, name in endpoints:
        body = {"backfill_id": 1} if name == "runs/complete" else {"pipeline_uuid": PIPELINE}
        answer = owner.control(method, name, body if method == "POST" and name != "faults" else None)
        assert answer.status != 404, f"{method} /_emulator/{name}: {answer.body}"


def test_an_undocumented_control_endpoint_is_a_404(owner):
    assert owner.control("POST", "no-such-thing", {}).status == 404
