"""Live backfills -> manifests: what `import` writes, and what it must skip (with the reason)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from backfill_sync.datetimes import format_iso
from backfill_sync.errors import ApiError
from backfill_sync.manifests.canonical import render_manifest
from backfill_sync.manifests.document import Document
from backfill_sync.manifests.loader import pipeline_selected
from backfill_sync.manifests.schema import check_document
from backfill_sync.manifests.yaml_loader import parse_yaml
from backfill_sync.models import (
    INTERVAL_TYPES,
    LIVE_STATUSES,
    DesiredState,
    LiveBackfill,
    StatusClass,
    status_class,
)
from backfill_sync.safe_text import printable
from backfill_sync.wire import is_unreadable_row

SCHEDULE_FIELDS = ("start_datetime", "end_datetime", "interval_type", "interval_units")
# Where a repository keeps its copy of the manifest schema (`backfill-sync schema > ...`).
LOCAL_SCHEMA = Path("schemas", "backfill-manifest.schema.json")
# Live status class -> manifest state: every status a started backfill can reach means "started".
STATE_OF_CLASS: dict[StatusClass, DesiredState] = {"started": "started", "cancelled": "cancelled"}


class ImportReader(Protocol):
    def list_backfills(self, pipeline_uuid: str | None = None) -> list[LiveBackfill]: ...
    def list_pipeline_uuids(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Skipped:
    """A live backfill (or a whole pipeline, when `backfill_id` is None) that import cannot express."""

    pipeline_uuid: str
    reason: str
    backfill_id: int | None = None
    name: str | None = None

    def __str__(self) -> str:
        # The uuid and the name come from Mage: a newline in them must not start a line of its own.
        if self.backfill_id is None:
            return printable(f"pipeline {self.pipeline_uuid}: {self.reason}")
        named = f" {self.name!r}" if self.name else ""
        return printable(f"pipeline {self.pipeline_uuid}, backfill {self.backfill_id}{named}: {self.reason}")


@dataclass(frozen=True, slots=True)
class ImportedManifest:
    pipeline_uuid: str
    text: str
    count: int


def read_selected_backfills(
    reader: ImportReader, include: Sequence[str], exclude: Sequence[str]
) -> tuple[dict[str, list[LiveBackfill]], list[Skipped]]:
    """Live backfills of the selected pipelines, grouped by pipeline.

    One listing of everything first; if Mage cannot list it (a row it cannot read poisons every
    listing that contains it, mage-api.md §6), each pipeline is listed alone to name the broken one.
    """
    try:
        rows = reader.list_backfills()
    except ApiError as exc:
        if not is_unreadable_row(exc):
            raise
        return _read_pipeline_by_pipeline(reader, include, exclude)
    grouped: dict[str, list[LiveBackfill]] = {}
    for row in rows:
        uuid = row.pipeline_uuid or ""
        if pipeline_selected(uuid, include, exclude):
            grouped.setdefault(uuid, []).append(row)
    return grouped, []


def any_pipeline_selected(reader: ImportReader, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Whether the filters pick at least one pipeline that exists in Mage (with backfills or not)."""
    return any(pipeline_selected(uuid, include, exclude) for uuid in reader.list_pipeline_uuids())


def _read_pipeline_by_pipeline(
    reader: ImportReader, include: Sequence[str], exclude: Sequence[str]
) -> tuple[dict[str, list[LiveBackfill]], list[Skipped]]:
    grouped: dict[str, list[LiveBackfill]] = {}
    skipped: list[Skipped] = []
    for uuid in reader.list_pipeline_uuids():
        if not pipeline_selected(uuid, include, exclude):
            continue
        try:
            rows = reader.list_backfills(uuid)
        except ApiError as exc:
            if not is_unreadable_row(exc):
                raise
            reason = (
                f"Mage cannot list its backfills ({exc.detail}); a row it cannot read back, such as an "
                "interval_type it stored but does not know, breaks every listing of the pipeline. "
                "Nothing was imported for it"
            )
            skipped.append(Skipped(uuid, reason))
            continue
        if rows:
            grouped[uuid] = rows
    return grouped, skipped


def find_schema_reference(out_dir: Path, cwd: Path) -> str | None:
    """The modeline's schema: the repository's own copy, relative to `out_dir`, when one is found
    walking up from `out_dir` to the git root or `cwd`; otherwise None (no modeline: the schema's
    `$id` URL is an identifier that serves nothing, and editors would report it unreachable)."""
    start, stop = out_dir.resolve(), cwd.resolve()
    for folder in (start, *start.parents):
        candidate = folder / LOCAL_SCHEMA
        if candidate.is_file():
            return Path(os.path.relpath(candidate, start)).as_posix()
        if folder == stop or (folder / ".git").exists():
            break
    return None


def build_manifest_text(
    pipeline_uuid: str,
    live: Sequence[LiveBackfill],
    *,
    file: str,
    max_runs: int,
    schema: str | None = None,
) -> tuple[ImportedManifest | None, list[Skipped]]:
    """The manifest for one pipeline's live backfills, checked as `validate` would check the file."""
    problems = check_document(Document(file, {"pipeline_uuid": pipeline_uuid, "backfills": []}), max_runs)
    if problems:
        reasons = "; ".join(_message(violation.path, violation.message) for violation in problems)
        return None, [Skipped(pipeline_uuid, f"cannot be written as {file}: {reasons}")]
    name_counts = Counter(backfill.name for backfill in live if backfill.name)
    entries: list[dict[str, Any]] = []
    skipped: list[Skipped] = []
    kept_names: dict[str, int] = {}
    for backfill in sorted(live, key=lambda row: row.id):
        entry, reason = manifest_entry(backfill, pinned=name_counts[backfill.name or ""] > 1)
        if entry is not None:
            reason = _check_entry(pipeline_uuid, entry, file, max_runs)
        if entry is not None and reason is None and entry["name"] in kept_names:
            reason = _duplicate_reason(entry["name"], kept_names[entry["name"]])
        if entry is None or reason is not None:
            skipped.append(Skipped(pipeline_uuid, reason or "", backfill.id, backfill.name))
            continue
        kept_names[entry["name"]] = backfill.id
        entries.append(entry)
    if not entries:
        return None, skipped
    text = render_manifest(pipeline_uuid, entries, schema=schema)
    _check_written(text, file, max_runs)
    return ImportedManifest(pipeline_uuid, text, len(entries)), skipped


def manifest_entry(backfill: LiveBackfill, *, pinned: bool) -> tuple[dict[str, Any] | None, str | None]:
    """One manifest entry for a live backfill, or None and why a manifest cannot express it."""
    reason = unexpressible(backfill)
    schedule = backfill.schedule()
    if reason is not None or schedule is None or backfill.name is None:
        return None, reason or "its schedule is not one a manifest can express"
    entry: dict[str, Any] = {"name": backfill.name}
    if pinned:
        entry["id"] = backfill.id
    entry["start_datetime"] = format_iso(schedule.start)
    entry["end_datetime"] = format_iso(schedule.end)
    entry["interval_type"] = schedule.interval_type
    entry["interval_units"] = schedule.interval_units
    if backfill.variables:
        entry["variables"] = backfill.variables
    if backfill.settings:
        entry["settings"] = backfill.settings
    known = backfill.status in LIVE_STATUSES
    state = STATE_OF_CLASS.get(status_class(backfill.status)) if known else None
    if state is not None:
        entry["state"] = state
    return entry, None


def unexpressible(backfill: LiveBackfill) -> str | None:
    """Why a manifest (format v1) cannot hold this live backfill; None when it can."""
    if backfill.block_uuid:
        return f"it has a block_uuid ({backfill.block_uuid!r}), which manifests do not support"
    if not backfill.name:
        return (
            "it has no name, and a manifest identifies backfills by name: name it in Mage, then import again"
        )
    unparseable = _unparseable_datetime(backfill)
    if unparseable is not None:
        return unparseable
    missing = [name for name in SCHEDULE_FIELDS if getattr(backfill, name) is None]
    if missing:
        return f"its schedule is incomplete in Mage (no {', '.join(missing)})"
    if backfill.interval_type not in INTERVAL_TYPES:
        return f"its interval_type {backfill.interval_type!r} is not one Mage can compute runs for"
    units = backfill.interval_units
    if not isinstance(units, int) or isinstance(units, bool) or units < 1:
        return f"its interval_units {units!r} is not an integer >= 1"
    return None


def _unparseable_datetime(backfill: LiveBackfill) -> str | None:
    # The wire reader turns a datetime it cannot parse into None; the raw text tells it from a missing one.
    for name in ("start_datetime", "end_datetime"):
        written = backfill.raw.get(name)
        if getattr(backfill, name) is None and written not in (None, ""):
            return f"its {name} {written!r} cannot be parsed"
    return None


def _check_entry(pipeline_uuid: str, entry: dict[str, Any], file: str, max_runs: int) -> str | None:
    document = Document(file, {"pipeline_uuid": pipeline_uuid, "backfills": [entry]})
    problems = check_document(document, max_runs)
    if not problems:
        return None
    return "; ".join(_message(violation.path, violation.message) for violation in problems)


def _duplicate_reason(name: str, kept_id: int) -> str:
    return (
        f"backfill {kept_id} has the same name and is imported (pinned with id:); a manifest names each "
        "backfill once: rename this one in Mage, then import again"
    )


def _message(path: str, message: str) -> str:
    field = path.removeprefix("backfills[0]").removeprefix(".")
    return f"{field}: {message}" if field else message


class InvalidImportError(RuntimeError):
    """import produced a manifest that does not validate: a bug, so it fails loudly and writes nothing."""


def _check_written(text: str, file: str, max_runs: int) -> None:
    document, problems = parse_yaml(text, file)
    if document is not None:
        problems = check_document(document, max_runs)
    if problems:
        listed = "; ".join(str(problem) for problem in problems)
        raise InvalidImportError(
            f"import produced an invalid manifest for {file} (a bug; nothing written): {listed}"
        )
