"""What a contract test knows about its server, and the emulator's /_emulator control endpoints."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backfill_sync.models import MAGE_PUBLIC_API_KEY, MageConnection

EMULATOR_PIPELINE = "hc_conformance"
EMULATOR_FLAG_PIPELINE = "hc_flags"


@dataclass(frozen=True)
class Credentials:
    email: str
    password: str


@dataclass(frozen=True)
class MageServer:
    kind: str  # "emulator" or "real"
    url: str
    owner: Credentials
    editor: Credentials
    pipeline_uuid: str
    can_inject_faults: bool
    viewer: Credentials = Credentials("viewer@example.com", "viewer")
    # A pipeline whose runs fail on chosen dates (fail_dates), and where its executions are counted.
    flag_pipeline: str = EMULATOR_FLAG_PIPELINE
    flag_dir: str | None = None  # real Mage: the folder its flag block reads (see real_mage_setup.py)

    @classmethod
    def for_emulator(cls, url: str) -> MageServer:
        return cls(
            kind="emulator",
            url=url,
            owner=Credentials("admin@admin.com", "admin"),
            editor=Credentials("editor@example.com", "editor"),
            pipeline_uuid=EMULATOR_PIPELINE,
            can_inject_faults=True,
        )

    def connection(self, role: str, **overrides: Any) -> MageConnection:
        who = {"owner": self.owner, "editor": self.editor, "viewer": self.viewer}[role]
        values: dict[str, Any] = {"url": self.url, "email": who.email, "password": who.password}
        values.update(overrides)
        return MageConnection(**values)

    # -- the flag pipeline: failing dates and executions, on both servers --------------------------------

    def fail_dates(self, *dates: str) -> None:
        """From now on, runs of the flag pipeline for these days (YYYY-MM-DD) fail; the others succeed."""
        if self.flag_dir is None:
            self._control(
                "POST",
                "/_emulator/runs/outcomes",
                {"pipeline_uuid": self.flag_pipeline, "fail_dates": list(dates)},
            )
            return
        folder = Path(self.flag_dir)
        for old in folder.glob("????-??-??"):
            old.unlink()
        for date in dates:
            (folder / date).write_text("fail\n", encoding="utf-8")

    def executions(self) -> Counter[str]:
        """How often the flag pipeline's block really ran, per day."""
        if self.flag_dir is None:
            rows = self._control("GET", "/_emulator/executions", None)["executions"]
            return Counter(
                {
                    row["execution_date"][:10]: row["count"]
                    for row in rows
                    if row["pipeline_uuid"] == self.flag_pipeline
                }
            )
        log = Path(self.flag_dir) / "exec.log"
        lines = log.read_text(encoding="utf-8").split() if log.exists() else []
        return Counter(lines)

    # -- emulator control (no auth needed) -----------------------------------------------------------

    def inject(self, **fault: Any) -> None:
        self._control("POST", "/_emulator/faults", fault)

    def clear_faults(self) -> None:
        self._control("DELETE", "/_emulator/faults", None)

    def requests(self) -> list[dict[str, Any]]:
        answer = self._control("GET", "/_emulator/requests", None)
        requests: list[dict[str, Any]] = answer["requests"]
        return requests

    def complete_runs(self, backfill_id: int, status: str = "completed") -> None:
        self._control("POST", "/_emulator/runs/complete", {"backfill_id": backfill_id, "status": status})

    def _control(self, method: str, path: str, body: Any) -> Any:
        assert self.can_inject_faults, "control endpoints exist only on the emulator"
        return call_json(method, self.url + path, body)


def call_json(method: str, url: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def log_in_jwt(server: MageServer, who: Credentials) -> str:
    """The session token exactly as /api/sessions hands it out (a JWT)."""
    body = {"api_key": MAGE_PUBLIC_API_KEY, "session": {"email": who.email, "password": who.password}}
    answer = call_json("POST", server.url + "/api/sessions", body)
    token: str = answer["session"]["token"]
    return token
