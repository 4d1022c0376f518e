"""The emulator's in-memory database: pipelines, backfills, pipeline runs, users and tokens, one lock."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import uuid4

from backfill_sync.emulator.apierrors import RECORD_NOT_FOUND
from backfill_sync.emulator.values import now_utc, now_utc_seconds


@dataclass
class PipelineRow:
    uuid: str
    name: str
    type: str
    created_at: datetime = field(default_factory=now_utc)
    blocks: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BackfillRow:
    """One `backfill` table row as SQLite would hold it: values are stored as sent (see values.py)."""

    id: int
    seq: int  # insertion order, the tie-breaker SQLite showed within one created_at second
    pipeline_uuid: str | None
    created_at: datetime
    updated_at: datetime
    name: Any = None
    block_uuid: Any = None
    start_datetime: datetime | None = None
    end_datetime: datetime | None = None
    interval_type: Any = None  # stored form: an enum NAME ("DAY"), or junk that poisons the row
    interval_units: Any = None
    settings: Any = None
    variables: Any = None
    metrics: Any = None
    pipeline_schedule_id: int | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    failed_at: datetime | None = None
    status: str | None = None


@dataclass
class TriggerRow:
    """A PipelineSchedule. A backfill's own trigger is `@once` with no schedule type; Mage's scheduler
    starts the `initial` runs of active triggers only (mage-runs-api.md §4.13, §6.12)."""

    id: int
    name: str
    pipeline_uuid: str | None
    token: str
    created_at: datetime
    updated_at: datetime
    status: str = "active"
    last_enabled_at: datetime | None = None
    variables: Any = None
    settings: Any = None


@dataclass
class RunRow:
    id: int
    backfill_id: int | None
    pipeline_uuid: str | None
    pipeline_schedule_id: int | None
    execution_date: datetime | None
    variables: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    status: str = "initial"
    started_at: datetime | None = None
    completed_at: datetime | None = None
    finish_after: float | None = None  # monotonic deadline of the execution under way, if it ends alone
    pending: bool = False  # a retry waits for the scheduler's next tick to execute
    execute: bool = True  # whether that execution runs the block (a retry of a completed run does not)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    username: str
    password: str
    role: str  # Owner, Editor, Viewer

    @property
    def owner(self) -> bool:
        return self.role == "Owner"


@dataclass(frozen=True, slots=True)
class Token:
    raw: str
    user: User
    expires: datetime


DEFAULT_USERS = (
    User(1, "admin@admin.com", "admin", "admin", "Owner"),
    User(2, "editor@example.com", "editor", "editor", "Editor"),
    User(3, "viewer@example.com", "viewer", "viewer", "Viewer"),
)


class Store:
    """All emulator state. Callers hold `lock` around every read-modify-write (handlers run in threads)."""

    def __init__(self, pipelines: tuple[str, ...] = ()) -> None:
        self.lock = threading.RLock()
        self.pipelines: dict[str, PipelineRow] = {}
        self.users: tuple[User, ...] = DEFAULT_USERS
        self.tokens: dict[str, Token] = {}
        self.not_found_message = RECORD_NOT_FOUND
        # Dates whose runs fail when they finish, per pipeline (the `/_emulator/runs/outcomes` control).
        self.fail_dates: dict[str, set[datetime]] = {}
        self.roles_created_at = now_utc_seconds()  # Mage makes its default roles on first start
        for uuid in pipelines:
            self.pipelines[uuid] = PipelineRow(uuid=uuid, name=uuid, type="python")
        self.clear_runs_and_backfills()

    def clear_runs_and_backfills(self) -> None:
        with self.lock:
            self.backfills: dict[int, BackfillRow] = {}
            self.runs: dict[int, RunRow] = {}
            self._backfill_ids = itertools.count(1)
            self._run_ids = itertools.count(1)
            self._schedule_ids = itertools.count(1)
            self.triggers: dict[int, TriggerRow] = {}
            self._seq = itertools.count(1)
            # How often each (pipeline, execution date) really ran its block: what a duplicate costs.
            self.executions: dict[tuple[str | None, datetime | None], int] = {}

    def insert_backfill(self, pipeline_uuid: str | None, fields: dict[str, Any]) -> BackfillRow:
        with self.lock:
            now = now_utc_seconds()
            row = BackfillRow(
                id=next(self._backfill_ids),
                seq=next(self._seq),
                pipeline_uuid=pipeline_uuid,
                created_at=now,
                updated_at=now,
            )
            for key, value in fields.items():
                setattr(row, key, value)
            self.backfills[row.id] = row
            return row

    def find_backfill(self, pk: str) -> BackfillRow | None:
        with self.lock:
            try:
                return self.backfills.get(int(pk))
            except ValueError:
                return None

    def backfills_newest_first(self, pipeline_uuid: str | None) -> list[BackfillRow]:
        """`ORDER BY created_at DESC`; within one second SQLite returned insertion order."""
        with self.lock:
            rows = [
                r for r in self.backfills.values() if not pipeline_uuid or r.pipeline_uuid == pipeline_uuid
            ]
        rows.sort(key=lambda r: r.seq)
        rows.sort(key=lambda r: r.created_at, reverse=True)
        return rows

    def delete_backfill(self, row: BackfillRow) -> None:
        with self.lock:
            del self.backfills[row.id]
            for run in self.runs.values():
                if run.backfill_id == row.id:
                    run.backfill_id = None

    def new_run_id(self) -> int:
        return next(self._run_ids)

    def insert_trigger(
        self, name: str, pipeline_uuid: str | None, variables: Any, settings: Any
    ) -> TriggerRow:
        """A new trigger; like Mage's PipelineSchedule it gets a random hex token of its own."""
        with self.lock:
            now = now_utc_seconds()
            trigger = TriggerRow(
                id=next(self._schedule_ids),
                name=name,
                pipeline_uuid=pipeline_uuid,
                token=uuid4().hex,
                created_at=now,
                updated_at=now,
                variables=variables,
                settings=settings,
            )
            self.triggers[trigger.id] = trigger
            return trigger

    def trigger_of(self, run: RunRow) -> TriggerRow | None:
        return self.triggers.get(run.pipeline_schedule_id or 0)

    def runs_of(self, backfill_id: int) -> list[RunRow]:
        with self.lock:
            return [run for run in self.runs.values() if run.backfill_id == backfill_id]

    def user_by_login(self, login: str) -> User | None:
        return next((u for u in self.users if login in (u.email, u.username)), None)
