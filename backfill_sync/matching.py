"""PURE: which live backfill each manifest entry manages - by pinned id, by name or by a previous name -
and which never-started twins of it an interrupted create (or two applies at once) left beside it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from backfill_sync.compare import desired_fields, diff_fields, live_fields
from backfill_sync.errors import PlanError, PlanProblem
from backfill_sync.models import DesiredBackfill, LiveBackfill, Manifest


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
    """By pinned id, else by name, else by a previous name. More than one candidate is an error, except
    for twins: never-started backfills of the desired name that a create whose answer was lost (or two
    applies at once) left beside the one with the lowest id, which is the match."""
    if desired.id is not None:
        return _match_pinned_id(desired, live)
    candidates = name_candidates(desired, live)
    if len(candidates) > 1 and twins_of(desired, candidates):
        return min(candidates, key=lambda backfill: backfill.id)
    if len(candidates) > 1:
        ids = ", ".join(str(backfill.id) for backfill in sorted(candidates, key=lambda b: b.id))
        raise PlanError(
            PlanProblem.at(
                desired.source,
                f"backfill {desired.name!r} of pipeline {desired.pipeline_uuid!r} matches "
                f"several live backfills (ids {ids}); pin the one to manage with `id:`",
            )
        )
    return candidates[0] if candidates else None


def name_candidates(desired: DesiredBackfill, live: LiveIndex) -> list[LiveBackfill]:
    """The live backfills named as the desired one is, or was (previous_names)."""
    names = dict.fromkeys((desired.name, *desired.previous_names))
    return [backfill for name in names for backfill in live.by_name.get(name, ())]


def twins_of(desired: DesiredBackfill, candidates: Sequence[LiveBackfill]) -> tuple[LiveBackfill, ...]:
    """The candidates beside the lowest id when all of them are never-started twins of the desired
    name; () when the candidates are not just such twins (then the match is ambiguous)."""
    rest = sorted(candidates, key=lambda backfill: backfill.id)[1:]
    if rest and all(twin.name == desired.name and twin.status is None for twin in rest):
        return tuple(rest)
    return ()


# What a rename leaves alike: the window, the interval and the variables.
_RENAME_KEEPS = frozenset({"start_datetime", "end_datetime", "interval_type", "interval_units", "variables"})
_PLAIN_YAML = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def rename_hints(desired: DesiredBackfill, unmanaged: Sequence[LiveBackfill]) -> tuple[str, ...]:
    """For an entry that would be created: the unmanaged backfills it looks like a rename of (same
    window and variables), and how to keep one - creating it instead would run every date again."""
    if desired.schedule is None:
        return ()
    wanted = desired_fields(desired)
    return tuple(
        f"same window and variables as unmanaged id {backfill.id} "
        f"{json.dumps(backfill.name, ensure_ascii=False)}: renamed? add previous_names: "
        f"[{_yaml_scalar(backfill.name)}] to keep it"
        for backfill in sorted(unmanaged, key=lambda b: b.id)
        if backfill.name is not None
        and not {change.field for change in diff_fields(live_fields(backfill), wanted)} & _RENAME_KEEPS
    )


def _yaml_scalar(text: str) -> str:
    """The name as it can be pasted into a YAML flow list: bare when plain, else JSON-quoted."""
    return text if _PLAIN_YAML.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def _match_pinned_id(desired: DesiredBackfill, live: LiveIndex) -> LiveBackfill:
    found = live.by_id.get(desired.id) if desired.id is not None else None
    if found is not None:
        _check_rename_is_free(desired, found, live)
        return found
    # Mage's routes do not check the parent pipeline: an id of another pipeline would be edited silently.
    raise PlanError(
        PlanProblem.at(
            desired.source,
            f"backfill {desired.name!r} pins id {desired.id}, which is not a backfill of "
            f"pipeline {desired.pipeline_uuid!r} in Mage; fix or remove `id:`",
        )
    )


def _check_rename_is_free(desired: DesiredBackfill, found: LiveBackfill, live: LiveIndex) -> None:
    """Renaming a pinned backfill onto the name of another would leave two with one name in Mage."""
    if found.name == desired.name:
        return
    holders = [backfill.id for backfill in live.by_name.get(desired.name, ()) if backfill.id != found.id]
    if holders:
        raise PlanError(
            PlanProblem.at(
                desired.source,
                f"backfill id {found.id} would be renamed to {desired.name!r}, the name of "
                f"live backfill id {holders[0]} of pipeline {desired.pipeline_uuid!r}; rename or delete "
                "that one first (two backfills with one name cannot be told apart by name)",
            )
        )


def _check_claimed_once(manifest: Manifest, matches: Mapping[str, LiveBackfill | None]) -> None:
    claimants: dict[int, list[str]] = {}
    for name, backfill in matches.items():
        if backfill is not None:
            claimants.setdefault(backfill.id, []).append(name)
    for backfill_id, names in claimants.items():
        if len(names) > 1:
            listed = ", ".join(repr(name) for name in names)
            last = next((b.source for b in manifest.backfills if b.name == names[-1]), None)
            raise PlanError(
                PlanProblem.at(
                    last,
                    f"backfills {listed} all match live backfill id {backfill_id} of "
                    f"pipeline {manifest.pipeline_uuid!r}; each live backfill can be managed by one entry",
                    file=manifest.path,
                )
            )
