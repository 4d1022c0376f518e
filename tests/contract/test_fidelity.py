"""Wire fidelity: the same raw requests to real Mage and to the emulator get answers of the same shape.

Each scenario sends one sequence of HTTP requests to both servers (as the owner, with the stdlib caller,
not MageClient) and compares every answer after reducing it to what must agree: HTTP status, keys and
their order, value types, exact values where they are deterministic, and the format of the values that
legitimately differ (ids, server clocks, tracebacks).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.contract.servers import MageServer
from tests.emulator_http import API_KEY, Answer, call, jwt_payload
from tests.emulator_process import start_emulator

pytestmark = pytest.mark.real_mage

# str(datetime) of a naive value: what Mage's to_dict writes on SQLite (mage-api.md §7, Datetimes).
DATETIME_FORMATS = {
    "seconds": re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"),
    "micro": re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$"),
}
JWT = re.compile(r"^[\w-]+\.[\w-]+\.[\w-]+$")
# Values of these keys come from server clocks or counters: only their type and format must agree.
CLOCK_KEYS = frozenset({"created_at", "updated_at", "started_at", "expires"})
ID_KEYS = frozenset({"id", "pipeline_schedule_id", "user_id", "backfill_id"})
MISSING_PIPELINE = "fidelity_no_such_pipeline"
FIVE_DAYS = {
    "start_datetime": "2024-01-01T00:00:00Z",
    "end_datetime": "2024-01-05T00:00:00Z",
    "interval_type": "day",
    "interval_units": 1,
}


# -- requests ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One request. `{id}` in the path is the scenario's backfill on that server, `{name}` its name.

    `auth` is "owner" (key + token), "token-only" (no api key) or "none". `mine` keeps, in a list answer,
    only this test's backfills (real Mage's pipeline is shared with other suites). `started` marks an
    answer about a started backfill, whose status and run counts move on by the real scheduler's clock.
    `fresh_second` waits for the next wall-clock second first, so that this request's created_at differs
    from earlier ones on both servers alike (lists order by created_at, ties by insertion). `expect`
    holds lines the real answer must show: the documented fact each step is about, so two answers that
    agree by both being wrong (say, both 401) do not pass.
    """

    method: str
    path: str
    body: Any = None
    auth: str = "owner"
    mine: bool = False
    started: bool = False
    fresh_second: bool = False
    expect: tuple[str, ...] = ()


def get(path: str, **options: Any) -> Step:
    return Step("GET", path, **options)


def post(path: str, body: Any, **options: Any) -> Step:
    return Step("POST", path, body, **options)


def put(body: Any, path: str = "/api/pipelines/{pipeline}/backfills/{id}", **options: Any) -> Step:
    return Step("PUT", path, body, **options)


DETAIL = "/api/pipelines/{pipeline}/backfills/{id}"
NESTED = "/api/pipelines/{pipeline}/backfills"
LIST_MINE = "/api/backfills?pipeline_uuid={pipeline}&_limit=100000"


@dataclass
class Side:
    """One server as this test drives it: its URL, the owner's token, what the test created there."""

    url: str
    token: str
    pipeline: str
    created: list[int] = field(default_factory=list)

    def send(self, step: Step, given: dict[str, str]) -> Answer:
        values = {**given, "pipeline": self.pipeline, "id": self.created[0] if self.created else 0}
        headers = {}
        if step.auth in ("owner", "token-only"):
            headers["Authorization"] = f"Bearer {self.token}"
        if step.auth == "owner":
            headers["X-API-KEY"] = API_KEY
        body = fill(step.body, values)
        raw = body.encode() if isinstance(body, str) else None  # a str body is sent as it is, not as JSON
        answer = call(self.url, step.method, step.path.format(**values), body, headers, raw)
        self.remember(step, answer)
        return answer

    def remember(self, step: Step, answer: Answer) -> None:
        if step.method == "POST" and isinstance(answer.body, dict) and "backfill" in answer.body:
            self.created.append(int(answer.body["backfill"]["id"]))

    def clean_up(self) -> None:
        for backfill_id in self.created:
            path = f"/api/backfills/{backfill_id}"
            headers = {"X-API-KEY": API_KEY, "Authorization": f"Bearer {self.token}"}
            found = call(self.url, "GET", path, None, headers)
            if found.error is not None:
                continue
            if found.body["backfill"]["status"] in ("initial", "running"):
                call(self.url, "PUT", path, {"backfill": {"status": "cancelled"}}, headers)
            call(self.url, "DELETE", path, None, headers)


def fill(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return value.format(**values)
    if isinstance(value, dict):
        return {key: fill(item, values) for key, item in value.items()}
    return value


def log_in(url: str, email: str, password: str) -> str:
    answer = call(
        url, "POST", "/api/sessions", {"api_key": API_KEY, "session": {"email": email, "password": password}}
    )
    assert answer.error is None, answer.body
    return str(jwt_payload(answer.body["session"]["token"])["token"])


# -- normalising answers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Lens:
    """What one answer is compared through: which backfills are this test's, and what may drift."""

    mine: frozenset[int]
    prefix: str
    step: Step


def shape(answer: Answer, lens: Lens) -> list[str]:
    """The answer as lines `path: type value`, in key order: what both servers must agree on."""
    return [f"HTTP {answer.status}", *flatten(answer.body, "body", "", lens)]


def flatten(value: Any, path: str, key: str, lens: Lens) -> Iterator[str]:
    if isinstance(value, dict):
        reduced = reduce_object(value, key, lens)
        yield f"{path}: object of {len(reduced)} keys"
        for name, item in reduced.items():
            yield from flatten(item, f"{path}.{name}", name, lens)
    elif isinstance(value, list):
        yield f"{path}: list of {len(value)}"
        for index, item in enumerate(value):
            yield from flatten(item, f"{path}[{index}]", key, lens)
    else:
        yield f"{path}: {label(value, key)}"


def label(value: Any, key: str) -> str:
    if key in ID_KEYS and isinstance(value, int):
        return "<int>"
    if isinstance(value, str) and (key in CLOCK_KEYS or key.endswith("_at")) and datetime_format(value):
        return f"<datetime {datetime_format(value)}>"
    if key == "token" and isinstance(value, str) and JWT.match(value):
        return "<jwt>"
    return f"{type(value).__name__} {value!r}"


def reduce_object(value: dict[str, Any], key: str, lens: Lens) -> dict[str, Any]:
    if key == "error" and value.get("code") == 500:
        value = {k: v if k in ("code", "exception") else f"<{type(v).__name__}>" for k, v in value.items()}
    if key == "url_parameters":
        value = {k: "<pk>" if k.endswith("pk") and str(v).isdigit() else v for k, v in value.items()}
    if "backfills" in value and lens.step.mine:
        value = {**value, "backfills": [row for row in value["backfills"] if is_mine(row, lens)]}
    if key == "metadata" and lens.step.mine and "count" in value:
        value = {**value, "count": f"<{type(value['count']).__name__}>"}
    if lens.step.started and "status" in value and "run_status_counts" in value:
        value = settle_started(value)
    if lens.step.started and "block_runs" in value:
        value = settle_run(value)
    return value


def is_mine(row: dict[str, Any], lens: Lens) -> bool:
    return row.get("id") in lens.mine or str(row.get("name") or "").startswith(lens.prefix)


def settle_started(backfill: dict[str, Any]) -> dict[str, Any]:
    """A started backfill on real Mage moves initial → running → completed on the scheduler's clock,
    while the emulator's runs (--run-seconds 0) never start: keep what is fixed at start time."""
    counts = backfill["run_status_counts"]
    return {
        **backfill,
        "status": "<started>"
        if backfill["status"] in ("initial", "running", "completed")
        else backfill["status"],
        "completed_at": "<maybe>",
        "run_status_counts": {"<runs>": sum(counts.values())},
    }


def settle_run(run: dict[str, Any]) -> dict[str, Any]:
    """A pipeline run of a started backfill. Its status and times move on real Mage's scheduler clock.
    Its block runs are one per block of the pipeline, and the emulator's `--pipeline` makes a pipeline
    without blocks while the real one has a no-op block: that difference is the setup, not the emulator."""
    return {
        **run,
        "status": "<moving>",
        "started_at": "<maybe>",
        "completed_at": "<maybe>",
        "block_runs": "<per block of the pipeline>",
        "block_runs_count": "<per block of the pipeline>",
        "completed_block_runs_count": "<per block of the pipeline>",
        "pipeline_schedule_token": "<hex>"
        if re.fullmatch(r"[0-9a-f]{32}", str(run.get("pipeline_schedule_token")))
        else run.get("pipeline_schedule_token"),
    }


def datetime_format(text: str) -> str | None:
    return next((name for name, pattern in DATETIME_FORMATS.items() if pattern.match(text)), None)


# -- scenarios --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """`setup` (if any) is POSTed first, as the backfill `{id}` refers to; its answer is compared too."""

    steps: tuple[Step, ...]
    setup: dict[str, Any] | None = None


def create(fields: dict[str, Any], **options: Any) -> Step:
    return post(NESTED, {"backfill": fields}, **options)


LOGIN = {"api_key": API_KEY, "session": {"email": "{email}", "password": "{password}"}}
BAD_LOGIN = {"api_key": API_KEY, "session": {"email": "{email}", "password": "nope"}}
NOT_FOUND = ("body.error.code: int 404", "body.error.type: str 'record_not_found'", "body.status: int 200")
SERVER_ERROR = ("HTTP 200", "body.error.code: int 500", "body.error.errors: str '<list>'")

SCENARIOS = [
    pytest.param(
        Scenario(
            (
                post(
                    "/api/sessions",
                    LOGIN,
                    auth="none",
                    expect=("body.session.token: <jwt>", "body.session.expires: <datetime micro>"),
                ),
            )
        ),
        id="login-good",
    ),
    pytest.param(
        Scenario((post("/api/sessions", BAD_LOGIN, auth="none", expect=NOT_FOUND),)),
        id="login-bad-password-404",
    ),
    pytest.param(
        Scenario((post("/api/sessions", LOGIN, expect=("body.error.code: int 403",)),)),
        id="login-while-logged-in-403",
    ),
    pytest.param(
        Scenario(
            (
                get(
                    LIST_MINE,
                    auth="token-only",
                    expect=("HTTP 401", "body.error.type: str 'invalid_api_key'"),
                ),
            )
        ),
        id="no-api-key-401",
    ),
    pytest.param(
        Scenario(
            (
                create({"name": "{name}-b"}, fresh_second=True),
                get(
                    LIST_MINE,
                    mine=True,
                    expect=("body.backfills[0].name: str '{name}-b'", "body.metadata.next: bool False"),
                ),
                get(
                    LIST_MINE + "&include_run_count=true",
                    mine=True,
                    expect=(
                        "body.backfills[0]: object of 18 keys",
                        "body.backfills[1].total_run_count: int 5",
                    ),
                ),
            ),
            setup={"name": "{name}", **FIVE_DAYS},
        ),
        id="list-with-and-without-run-count",
    ),
    pytest.param(
        Scenario(
            (
                get(
                    DETAIL,
                    expect=(
                        "body.backfill: object of 18 keys",
                        "body.backfill.start_datetime: NoneType None",
                    ),
                ),
            ),
            setup={"name": "{name}"},
        ),
        id="create-name-only",
    ),
    pytest.param(
        Scenario(
            (get(DETAIL + "?include_run_count=true", expect=("body.backfill.total_run_count: int 0",)),),
            setup={
                "name": "{name}",
                **FIVE_DAYS,
                "variables": {"region": "eu", "n": 3},
                "settings": {"foo": True},
                "block_uuid": "noop",
            },
        ),
        id="create-all-fields-owner",
    ),
    pytest.param(
        Scenario(
            (post(NESTED, {"name": "{name}"}), get(DETAIL, expect=("body.backfill.name: NoneType None",)))
        ),
        id="create-without-wrapper-all-null",
    ),
    pytest.param(
        Scenario(
            (
                create(
                    {"name": "{name}", "start_datetime": "not-a-date"},
                    expect=(*SERVER_ERROR, "body.error.exception: str 'Unknown string format: not-a-date'"),
                ),
                get(LIST_MINE, mine=True, expect=("body.backfills: list of 0",)),
            )
        ),
        id="create-bad-date-500-nothing-saved",
    ),
    pytest.param(
        Scenario(
            (
                put({"backfill": {"name": "{name}-renamed"}}),
                get(
                    DETAIL,
                    expect=(
                        "body.backfill.name: str '{name}-renamed'",
                        "body.backfill.interval_units: int 1",
                    ),
                ),
            ),
            setup={"name": "{name}", **FIVE_DAYS},
        ),
        id="put-partial-fields",
    ),
    pytest.param(
        Scenario(
            (
                put(
                    {"backfill": {"status": "initial", "name": "{name}-ignored"}},
                    started=True,
                    expect=("body.backfill.name: str '{name}'", "body.backfill.status: str 'initial'"),
                ),
                get(
                    DETAIL + "?include_run_count=true",
                    started=True,
                    expect=("body.backfill.total_run_count: int 3",),
                ),
                put({"backfill": {"status": "cancelled"}}, expect=("body.backfill.status: str 'cancelled'",)),
            ),
            setup={
                "name": "{name}",
                "start_datetime": "2024-01-01",
                "end_datetime": "2024-01-03",
                "interval_type": "day",
                "interval_units": 1,
            },
        ),
        id="put-status-initial-drops-fields-and-counts-runs",
    ),
    pytest.param(
        Scenario(
            (
                get(
                    DETAIL + "?include_run_count=true",
                    expect=("body.backfill.run_status_counts: object of 0 keys",),
                ),
                get(
                    DETAIL + "?include_preview_runs=true&_limit=3",
                    expect=("body.backfill.pipeline_run_dates: list of 4",),
                ),
            ),
            setup={"name": "{name}", **FIVE_DAYS},
        ),
        id="detail-run-count-and-preview",
    ),
    pytest.param(
        Scenario(
            (
                put(
                    {"backfill": {"status": "cancelled"}},
                    expect=(
                        *SERVER_ERROR,
                        "body.error.exception: str \"'NoneType' object has no attribute 'update'\"",
                    ),
                ),
                get(DETAIL, expect=("body.backfill.status: str 'cancelled'",)),
            ),
            setup={"name": "{name}", **FIVE_DAYS},
        ),
        id="cancel-never-started-500-but-saved",
    ),
    pytest.param(
        Scenario(
            (
                get("/api/backfills/987654321", expect=NOT_FOUND),
                get(DETAIL.replace("{id}", "987654321"), expect=NOT_FOUND),
                put({"backfill": {"name": "x"}}, "/api/backfills/987654321", expect=NOT_FOUND),
                get(
                    "/api/backfills/987654321?_http_error_codes=true",
                    expect=("HTTP 404", "body.status: int 404"),
                ),
            )
        ),
        id="unknown-id-404",
    ),
    pytest.param(
        Scenario(
            (
                post(
                    f"/api/pipelines/{MISSING_PIPELINE}/backfills",
                    {"backfill": {"name": "{name}"}},
                    expect=(
                        *SERVER_ERROR,
                        f"body.error.exception: str 'Pipeline {MISSING_PIPELINE} does not exist.'",
                    ),
                ),
                get(f"/api/pipelines/{MISSING_PIPELINE}/backfills", expect=SERVER_ERROR),
                get(LIST_MINE, mine=True, expect=("body.backfills: list of 0",)),
            )
        ),
        id="missing-pipeline-500",
    ),
    pytest.param(
        Scenario(
            (
                get(
                    "/api/backfills?pipeline_uuid={pipeline}&_limit=0",
                    mine=True,
                    expect=("body.backfills: list of 0", "body.metadata.next: bool True"),
                ),
                get("/api/backfills?pipeline_uuid={pipeline}&_limit=abc", expect=SERVER_ERROR),
            ),
            setup={"name": "{name}"},
        ),
        id="limit-zero-and-not-a-number",
    ),
    pytest.param(
        Scenario(
            (get(DETAIL, expect=("body.backfill.end_datetime: str '2024-03-02 00:00:00.123456'",)),),
            setup={
                "name": "{name}",
                "start_datetime": "2024-03-01T00:00:00+02:00",
                "end_datetime": "2024-03-02T00:00:00.123456+02:00",
            },
        ),
        id="offset-dropped-not-converted",
    ),
    pytest.param(
        Scenario(
            (get(DETAIL, expect=("body.backfill.interval_type: str 'day'",)),),
            setup={"name": "{name}", **FIVE_DAYS, "interval_type": "DAY"},
        ),
        id="interval-type-upper-case-accepted",
    ),
    pytest.param(
        Scenario(
            (
                Step("DELETE", DETAIL, expect=("body.backfill.name: str '{name}'",)),
                Step("DELETE", DETAIL, expect=NOT_FOUND),
                get(DETAIL, expect=NOT_FOUND),
            ),
            setup={"name": "{name}", **FIVE_DAYS},
        ),
        id="delete-returns-object-then-404",
    ),
    pytest.param(
        Scenario(
            (
                put({"backfill": {"status": "initial"}}, started=True),
                get(
                    "/api/pipeline_runs?backfill_id={id}",
                    started=True,
                    expect=(
                        "body.pipeline_runs: list of 2",
                        "body.pipeline_runs[0].execution_date: str '2024-01-02 00:00:00'",
                        "body.pipeline_runs[0].pipeline_schedule_name: str 'Backfill {name}'",
                    ),
                ),
                put({"backfill": {"status": "cancelled"}}),
            ),
            setup={**FIVE_DAYS, "name": "{name}", "end_datetime": "2024-01-02"},
        ),
        id="started-backfill-pipeline-runs",
    ),
    # Beyond the brief's list: more of mage-api.md §4.3/§4.6 sent to both.
    pytest.param(
        Scenario(
            (
                put(
                    {"backfill": {"status": "running", "name": "{name}-applied"}},
                    expect=(
                        "body.backfill.status: NoneType None",
                        "body.backfill.name: str '{name}-applied'",
                    ),
                ),
                put({"name": "{name}-no-wrapper"}, expect=("body.backfill.name: str '{name}-applied'",)),
                put(
                    {"backfill": {"variables": None, "interval_units": "2"}},
                    expect=("body.backfill.interval_units: int 2",),
                ),
            ),
            setup={"name": "{name}", **FIVE_DAYS, "variables": {"a": 1}},
        ),
        id="put-ignored-status-no-wrapper-null-and-numeric-text",
    ),
    pytest.param(
        Scenario(
            (
                Step("POST", NESTED, "{{not json", expect=SERVER_ERROR),
                post("/api/backfills", {"backfill": {"name": "{name}"}}, expect=SERVER_ERROR),
                put({"backfill": {"start_datetime": "2024-13-45"}}, expect=SERVER_ERROR),
                get(DETAIL + "?include_run_count=0", expect=("body.backfill.total_run_count: int 5",)),
            ),
            setup={"name": "{name}", **FIVE_DAYS},
        ),
        id="bad-json-no-parent-bad-month-and-truthy-flag",
    ),
]


# -- fixtures and the test --------------------------------------------------------------------------


@dataclass(frozen=True)
class Servers:
    real: MageServer
    emulator_url: str


@pytest.fixture(scope="module")
def servers(real_mage_server: MageServer) -> Iterator[Servers]:
    with start_emulator("--pipeline", real_mage_server.pipeline_uuid, "--run-seconds", "0") as url:
        yield Servers(real_mage_server, url)


@pytest.fixture
def sides(servers: Servers) -> Iterator[tuple[Side, Side]]:
    owner = servers.real.owner
    pipeline = servers.real.pipeline_uuid
    real = Side(servers.real.url, log_in(servers.real.url, owner.email, owner.password), pipeline)
    emulator = Side(servers.emulator_url, log_in(servers.emulator_url, owner.email, owner.password), pipeline)
    try:
        yield real, emulator
    finally:
        real.clean_up()
        emulator.clean_up()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_emulator_answers_like_real_mage(scenario: Scenario, sides: tuple[Side, Side], servers: Servers):
    prefix = f"fid-{uuid.uuid4().hex[:8]}"
    owner = servers.real.owner
    steps = ((create(scenario.setup),) if scenario.setup else ()) + scenario.steps
    given = {"name": prefix, "email": owner.email, "password": owner.password}
    for number, step in enumerate(steps):
        if step.fresh_second:
            time.sleep(1.05 - time.time() % 1)
        shapes = []
        for side in sides:
            answer = side.send(step, given)
            shapes.append(shape(answer, Lens(frozenset(side.created), prefix, step)))
        real, emulator = shapes
        assert emulator == real, f"step {number}: {step.method} {step.path}"
        missing = [line for line in (e.format(**given) for e in step.expect) if line not in real]
        assert not missing, f"step {number}: real Mage no longer answers as mage-api.md says"
