"""Value types shared by the whole package: manifests, live backfills, field sets, violations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

if TYPE_CHECKING:
    from backfill_sync.runs import Progress

IntervalType = Literal["second", "minute", "hour", "day", "week", "month", "year", "custom"]
INTERVAL_TYPES: tuple[str, ...] = get_args(IntervalType)

DesiredState = Literal["started", "cancelled", "absent"]
DESIRED_STATES: tuple[str, ...] = get_args(DesiredState)

LiveStatus = Literal["initial", "running", "completed", "failed", "cancelled"]
LIVE_STATUSES: tuple[str, ...] = get_args(LiveStatus)

# What a status PUT may carry; every other status string is ignored by Mage (mage-api.md §7).
StatusCommand = Literal["initial", "cancelled"]

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem in one manifest, pointing at the offending value (1-based line and column)."""

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}:{self.col}: {where}{self.message}"


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where a value came from, for messages that point a user at their YAML."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A backfill's date window: runs at start, start+step, ... while <= end (Mage's inclusive end)."""

    start: datetime  # timezone-aware, UTC
    end: datetime  # timezone-aware, UTC
    interval_type: IntervalType
    interval_units: int


@dataclass(frozen=True, slots=True)
class DesiredBackfill:
    """One backfill as a manifest asks for it, normalised (UTC datetimes, defaults applied)."""

    pipeline_uuid: str
    name: str
    schedule: Schedule | None  # None only with state "absent", where the manifest needs just the name
    variables: JsonObject | None = None
    settings: JsonObject | None = None
    state: DesiredState | None = None
    id: int | None = None
    previous_names: tuple[str, ...] = ()
    description: str | None = None
    retry_failed_before: datetime | None = None  # UTC; retry dates whose latest run failed before it
    source: SourceLocation | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Manifest:
    """One manifest file: the backfills wanted for one pipeline."""

    path: str
    pipeline_uuid: str
    backfills: tuple[DesiredBackfill, ...]


@dataclass(frozen=True, slots=True)
class BackfillFields:
    """The Mage fields a create or a field update sends; None means "not sent" (Mage ignores nulls)."""

    name: str | None = None
    start_datetime: datetime | None = None
    end_datetime: datetime | None = None
    interval_type: IntervalType | None = None
    interval_units: int | None = None
    variables: JsonObject | None = None
    settings: JsonObject | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class LiveBackfill:
    """One backfill as Mage reports it. Values are parsed but not judged: Mage stores junk as-is."""

    id: int
    pipeline_uuid: str | None
    name: str | None
    start_datetime: datetime | None  # timezone-aware, UTC (Mage's naive strings are UTC)
    end_datetime: datetime | None
    interval_type: str | None  # lower-cased; may be a value we do not know
    interval_units: Any  # Mage keeps whatever it was sent (SQLite): int, str, float, None
    variables: JsonObject | None
    settings: JsonObject | None
    status: str | None
    block_uuid: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    total_run_count: int | None = None
    run_status_counts: dict[str, int] | None = None
    pipeline_schedule_id: int | None = None  # its trigger, made by the first start
    # What Mage sent for the fields it could not be read from (a datetime that does not parse), as sent.
    raw: JsonObject = field(default_factory=dict, compare=False, repr=False)

    def schedule(self) -> Schedule | None:
        """The run window, when every part of it is present and sane; None otherwise."""
        units = self.interval_units
        if (
            self.start_datetime is None
            or self.end_datetime is None
            or self.interval_type not in INTERVAL_TYPES
            or not isinstance(units, int)
            or isinstance(units, bool)
            or units < 1
        ):
            return None
        return Schedule(
            self.start_datetime,
            self.end_datetime,
            cast(IntervalType, self.interval_type),  # checked against INTERVAL_TYPES above
            units,
        )


# Mage's built-in OAuth client id: the api key of every Mage install (settings/server.py).
MAGE_PUBLIC_API_KEY = "zkWlN0PkIKSN0C11CfUHUj84OT5XOJ6tDZ6bDRO2"
DEFAULT_MAGE_URL = "http://localhost:6789"
# Seconds one request may take, from sending it to the last byte of its answer (--request-timeout).
DEFAULT_REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class MageConnection:
    """Where Mage is and how to authenticate. Secrets are kept out of repr and so out of tracebacks."""

    url: str = DEFAULT_MAGE_URL
    api_key: str = field(default=MAGE_PUBLIC_API_KEY, repr=False)
    token: str | None = field(default=None, repr=False)
    email: str | None = None
    password: str | None = field(default=None, repr=False)
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT


@dataclass(frozen=True, slots=True)
class RunCounts:
    """How many pipeline runs a backfill implies, and how many of them are in each run status."""

    total: int
    by_status: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------------------
# Plans: what `plan` shows and `apply` carries out.

ActionKind = Literal[
    "delete_twins", "create", "update", "start", "restart", "run", "retry", "cancel", "cancel_runs", "delete"
]
ACTION_KINDS: tuple[str, ...] = get_args(ActionKind)

# How far a backfill has got, as far as a plan cares: scheduler moves inside a class are not changes.
StatusClass = Literal["never_started", "started", "cancelled"]


def status_class(status: str | None) -> StatusClass:
    """null: never started; cancelled; anything else (initial, running, completed, failed): started."""
    if status is None:
        return "never_started"
    if status == "cancelled":
        return "cancelled"
    return "started"


def target_class(state: DesiredState | None) -> StatusClass | None:
    """The status class a manifest's `state` asks for; None when it leaves the status alone."""
    if state == "started":
        return "started"
    if state == "cancelled":
        return "cancelled"
    return None


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One Mage field going from `before` to `after` (JSON values; datetimes as ISO strings)."""

    field: str
    before: Any
    after: Any
    details: tuple[str, ...] = ()  # for nested values: one line per changed key


@dataclass(frozen=True, slots=True)
class Action:
    """One step of a plan item. `runs` is the pipeline runs it sets off (start, restart, run, retry) or
    stops (cancel, cancel_runs, delete); `dates` are the dates of a run, retry or cancel_runs."""

    kind: ActionKind
    runs: int | None = None
    blocked: str | None = None  # why it will not be carried out, when it will not
    dates: tuple[datetime, ...] = ()
    ids: tuple[int, ...] = ()  # delete_twins: the twins' ids

    @property
    def is_blocked(self) -> bool:
        return self.blocked is not None


@dataclass(frozen=True, slots=True)
class PlanItem:
    """Everything a plan does to one backfill, in order: create or update, then one status action."""

    pipeline_uuid: str
    name: str
    desired: DesiredBackfill
    live: LiveBackfill | None
    changes: tuple[FieldChange, ...]
    actions: tuple[Action, ...]
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    fingerprint: str | None = None  # of `live` when the plan was made (managed fields + status class)
    progress: Progress | None = field(default=None, compare=False)  # its runs, where the plan shows them

    @property
    def live_id(self) -> int | None:
        return None if self.live is None else self.live.id

    def has_changes(self) -> bool:
        return bool(self.actions)


@dataclass(frozen=True, slots=True)
class PipelinePlan:
    """The plan for one pipeline (one manifest), plus the live backfills no manifest names."""

    pipeline_uuid: str
    items: tuple[PlanItem, ...]
    unmanaged: tuple[LiveBackfill, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """A whole plan: for one Mage URL, the items of every managed pipeline."""

    mage_url: str
    pipelines: tuple[PipelinePlan, ...]
    allow_restart: bool = False
    mage_time: datetime | None = None  # Mage's clock when the plan was made

    def items(self) -> tuple[PlanItem, ...]:
        return tuple(item for pipeline in self.pipelines for item in pipeline.items)

    def has_changes(self) -> bool:
        return any(item.has_changes() for item in self.items())

    def actions(self) -> tuple[Action, ...]:
        return tuple(action for item in self.items() for action in item.actions)


# ---------------------------------------------------------------------------------------------------------
# Apply results: what happened to each plan item.

Outcome = Literal["done", "unchanged", "failed", "stale", "blocked", "skipped"]


@dataclass(frozen=True, slots=True)
class ItemResult:
    """What apply did to one plan item: the steps that happened, and how it ended."""

    pipeline_uuid: str
    name: str
    live_id: int | None
    outcome: Outcome
    steps: tuple[str, ...] = ()
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyResult:
    items: tuple[ItemResult, ...] = field(default_factory=tuple)
    interrupted: bool = False  # Ctrl-C: items being written were finished, the others skipped

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(item.outcome in ("done", "unchanged") for item in self.items)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for item in self.items if item.outcome == outcome)
