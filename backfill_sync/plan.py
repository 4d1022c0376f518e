"""PURE: match manifests to live backfills and decide, per backfill, what apply would do. No I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from backfill_sync.compare import desired_fields, diff_fields, fingerprint, live_fields
from backfill_sync.errors import PlanError
from backfill_sync.models import (
    LIVE_STATUSES,
    Action,
    DesiredBackfill,
    LiveBackfill,
    Manifest,
    PipelinePlan,
    Plan,
    PlanItem,
)
from backfill_sync.schedule import count_runs

UNFINISHED_RUN_STATUSES = ("initial", "running")
RESTART_BLOCKED = "restarting re-creates every run; pass --allow-restart to plan and apply it"
RUNS_STAY_NOTE = "Mage keeps its pipeline runs after the backfill is deleted"
EDIT_AFTER_START_WARNING = "already started: runs it has created keep their old dates and variables"


def compute_plan(
    manifests: Sequence[Manifest],
    live_by_pipeline: Mapping[str, Sequence[LiveBackfill]],
    *,
    mage_url: str,
    allow_restart: bool = False,
) -> Plan:
    """The plan for every manifest against the live backfills of its pipeline.

    Problems of every pipeline are reported together (one PlanError), not only the first one met.
    """
    pipelines: list[PipelinePlan] = []
    problems: list[str] = []
    for manifest in manifests:
        try:
            live = live_by_pipeline.get(manifest.pipeline_uuid, ())
            pipelines.append(plan_pipeline(manifest, live, allow_restart))
        except PlanError as exc:
            problems.append(str(exc))
    if problems:
        raise PlanError("\n".join(problems))
    return Plan(mage_url=mage_url, pipelines=tuple(pipelines), allow_restart=allow_restart)


def plan_pipeline(manifest: Manifest, live: Sequence[LiveBackfill], allow_restart: bool) -> PipelinePlan:
    matches = match_backfills(manifest, live)
    claimed = {backfill.id for backfill in matches.values() if backfill is not None}
    items = tuple(plan_item(desired, matches[desired.name], allow_restart) for desired in manifest.backfills)
    unmanaged = tuple(backfill for backfill in live if backfill.id not in claimed)
    return PipelinePlan(pipeline_uuid=manifest.pipeline_uuid, items=items, unmanaged=unmanaged)


def match_backfills(manifest: Manifest, live: Sequence[LiveBackfill]) -> dict[str, LiveBackfill | None]:
    """For each desired backfill (by name), the one live backfill it manages, or None (to create)."""
    index = LiveIndex.of(live)
    matches = {desired.name: find_match(desired, index) for desired in manifest.backfills}
    _check_claimed_once(manifest, matches)
    return matches


@dataclass(frozen=True, slots=True)
class LiveIndex:
    """One pipeline's live backfills by id and by name, so matching a manifest costs one pass."""

    by_id: Mapping[int, LiveBackfill]
    by_name: Mapping[str | None, Sequence[LiveBackfill]]

    @classmethod
    def of(cls, live: Sequence[LiveBackfill]) -> LiveIndex:
        by_name: dict[str | None, list[LiveBackfill]] = {}
        for backfill in live:
            by_name.setdefault(backfill.name, []).append(backfill)
        return cls({backfill.id: backfill for backfill in live}, by_name)


def find_match(desired: DesiredBackfill, live: LiveIndex) -> LiveBackfill | None:
    """By pinned id, else by name, else by a previous name. More than one candidate is an error."""
    if desired.id is not None:
        return _match_pinned_id(desired, live)
    names = dict.fromkeys((desired.name, *desired.previous_names))
    candidates = [backfill for name in names for backfill in live.by_name.get(name, ())]
    if len(candidates) > 1:
        ids = ", ".join(str(backfill.id) for backfill in sorted(candidates, key=lambda b: b.id))
        raise PlanError(
            f"{_where(desired)}backfill {desired.name!r} of pipeline {desired.pipeline_uuid!r} matches "
            f"several live backfills (ids {ids}); pin the one to manage with `id:`"
        )
    return candidates[0] if candidates else None


def plan_item(desired: DesiredBackfill, live: LiveBackfill | None, allow_restart: bool) -> PlanItem:
    if live is None:
        return _plan_new(desired)
    changes = () if desired.state == "absent" else diff_fields(live_fields(live), desired_fields(desired))
    actions = ([Action("update")] if changes else []) + _status_actions(desired, live, allow_restart)
    # A rename does not touch the runs; dates, interval, variables and settings do not reach them either.
    edits_runs = any(change.field != "name" for change in changes)
    warnings = (EDIT_AFTER_START_WARNING,) if edits_runs and live.status is not None else ()
    return PlanItem(
        pipeline_uuid=desired.pipeline_uuid,
        name=desired.name,
        desired=desired,
        live=live,
        changes=changes,
        actions=tuple(actions),
        warnings=warnings + _unknown_status_warning(live),
        notes=_status_notes(desired, live),
        fingerprint=fingerprint(live),
    )


def _plan_new(desired: DesiredBackfill) -> PlanItem:
    if desired.state == "absent":
        return PlanItem(desired.pipeline_uuid, desired.name, desired, None, (), (), notes=("already absent",))
    after = desired_fields(desired)
    changes = tuple(c for c in diff_fields(dict.fromkeys(after), after) if c.after != {})
    actions = [Action("create")]
    if desired.state == "started":
        actions.append(Action("start", runs=_runs_of(desired)))
    elif desired.state == "cancelled":
        actions.append(Action("cancel", runs=0))
    return PlanItem(desired.pipeline_uuid, desired.name, desired, None, changes, tuple(actions))


def _status_actions(desired: DesiredBackfill, live: LiveBackfill, allow_restart: bool) -> list[Action]:
    status = live.status
    if desired.state == "started":
        if status is None:
            return [Action("start", runs=_runs_of(desired))]
        if status == "cancelled":
            blocked = None if allow_restart else RESTART_BLOCKED
            return [Action("restart", runs=_runs_of(desired), blocked=blocked)]
    elif desired.state == "cancelled":
        if status is None:
            return [Action("cancel", runs=0)]
        if status in UNFINISHED_RUN_STATUSES:
            return [Action("cancel", runs=unfinished_runs(live))]
    elif desired.state == "absent":
        return [Action("delete", runs=unfinished_runs(live) if status in UNFINISHED_RUN_STATUSES else 0)]
    return []


def _runs_of(desired: DesiredBackfill) -> int:
    """The runs a start sets off; only started entries ask, and the schema gives those a schedule."""
    assert desired.schedule is not None, f"backfill {desired.name!r} is started without a schedule"
    return count_runs(desired.schedule)


def _status_notes(desired: DesiredBackfill, live: LiveBackfill) -> tuple[str, ...]:
    if desired.state == "cancelled" and live.status in ("completed", "failed"):
        return (f"already {live.status}: nothing left to cancel",)
    if desired.state == "absent":
        return (RUNS_STAY_NOTE,)  # the action line already says it stops the unfinished runs first
    return ()


def _unknown_status_warning(live: LiveBackfill) -> tuple[str, ...]:
    known = (None, *LIVE_STATUSES)
    return () if live.status in known else (f"Mage reports an unknown status {live.status!r}",)


def unfinished_runs(live: LiveBackfill) -> int | None:
    """Runs a cancel would stop, when Mage told us its run counts; None when unknown."""
    counts = live.run_status_counts
    if counts is None:
        return None
    return sum(counts.get(status, 0) for status in UNFINISHED_RUN_STATUSES)


def _match_pinned_id(desired: DesiredBackfill, live: LiveIndex) -> LiveBackfill:
    found = live.by_id.get(desired.id) if desired.id is not None else None
    if found is not None:
        _check_rename_is_free(desired, found, live)
        return found
    # Mage's routes do not check the parent pipeline: an id of another pipeline would be edited silently.
    raise PlanError(
        f"{_where(desired)}backfill {desired.name!r} pins id {desired.id}, which is not a backfill of "
        f"pipeline {desired.pipeline_uuid!r} in Mage; fix or remove `id:`"
    )


def _check_rename_is_free(desired: DesiredBackfill, found: LiveBackfill, live: LiveIndex) -> None:
    """Renaming a pinned backfill onto the name of another would leave two with one name in Mage."""
    if found.name == desired.name:
        return
    holders = [backfill.id for backfill in live.by_name.get(desired.name, ()) if backfill.id != found.id]
    if holders:
        raise PlanError(
            f"{_where(desired)}backfill id {found.id} would be renamed to {desired.name!r}, the name of "
            f"live backfill id {holders[0]} of pipeline {desired.pipeline_uuid!r}; rename or delete that "
            "one first (two backfills with one name cannot be told apart by name)"
        )


def _check_claimed_once(manifest: Manifest, matches: Mapping[str, LiveBackfill | None]) -> None:
    claimants: dict[int, list[str]] = {}
    for name, backfill in matches.items():
        if backfill is not None:
            claimants.setdefault(backfill.id, []).append(name)
    for backfill_id, names in claimants.items():
        if len(names) > 1:
            listed = ", ".join(repr(name) for name in names)
            raise PlanError(
                f"{manifest.path}: backfills {listed} all match live backfill id {backfill_id} of "
                f"pipeline {manifest.pipeline_uuid!r}; each live backfill can be managed by one entry"
            )


def _where(desired: DesiredBackfill) -> str:
    return f"{desired.source}: " if desired.source is not None else ""
