"""Find manifest files, read them safely, check them, and turn the valid ones into Manifest values."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from backfill_sync.datetimes import parse_manifest_datetime
from backfill_sync.errors import ManifestError, UsageError
from backfill_sync.gc_pause import cycles_left_alone
from backfill_sync.manifests.document import Document
from backfill_sync.manifests.schema import (
    MANIFEST_SUFFIXES,
    across_files_part,
    check_across_files,
    check_document,
    file_pipeline_uuid,
    sort_violations,
)
from backfill_sync.manifests.yaml_loader import parse_yaml
from backfill_sync.models import DesiredBackfill, Manifest, Schedule, Violation

DEFAULT_MANIFEST_DIR = "backfills"
MAX_MANIFEST_BYTES = 1024 * 1024
SCHEDULE_KEYS = ("start_datetime", "end_datetime", "interval_type", "interval_units")


def find_manifest_files(paths: Sequence[str]) -> list[Path]:
    """Files as given, folders as their *.yaml/*.yml (not recursive); UsageError lists every bad path."""
    found: list[Path] = []
    problems: list[str] = []
    for text in paths or [DEFAULT_MANIFEST_DIR]:
        path = Path(text)
        if path.is_dir():
            inside = _manifests_in(path)
            found += inside
            if not inside:
                problems.append(f"{text}: no *.yaml or *.yml manifests in this folder")
        elif path.is_file():
            found.append(path)
        elif paths:
            problems.append(f"{text}: no such file or folder")
        else:
            problems.append(f"{text}: no such folder (the default when no PATH is given)")
    if problems:
        raise UsageError("; ".join(problems))
    return _unique(found)


def _manifests_in(folder: Path) -> list[Path]:
    # Hidden files are editor droppings (.#x.yaml, swap files), never manifests.
    return sorted(
        entry
        for entry in folder.iterdir()
        if entry.suffix in MANIFEST_SUFFIXES and not entry.name.startswith(".") and entry.is_file()
    )


def _unique(paths: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    unique = []
    for path in paths:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(path)
    return unique


def select_pipelines(files: Sequence[Path], include: Sequence[str], exclude: Sequence[str]) -> list[Path]:
    """Keep files whose pipeline (the file stem) matches an --pipeline glob (if any) and no --exclude glob."""

    return [path for path in files if pipeline_selected(file_pipeline_uuid(str(path)), include, exclude)]


def pipeline_selected(pipeline_uuid: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """True when the uuid matches an --pipeline glob (or none is given) and no --exclude glob."""
    if include and not any(fnmatch.fnmatchcase(pipeline_uuid, glob) for glob in include):
        return False
    return not any(fnmatch.fnmatchcase(pipeline_uuid, glob) for glob in exclude)


def read_manifest(path: Path) -> tuple[Document | None, list[Violation]]:
    """Read and parse one file; size and encoding are checked before any YAML parsing."""
    file = str(path)
    with path.open("rb") as stream:
        raw = stream.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        message = f"the file is larger than {MAX_MANIFEST_BYTES} bytes (1 MiB); a manifest is far smaller"
        return None, [Violation(file, 1, 1, "", message)]
    text, problems = decode_manifest(raw, file)
    if text is None:
        return None, problems
    return parse_yaml(text, file)


def decode_manifest(raw: bytes, file: str) -> tuple[str | None, list[Violation]]:
    """UTF-8 only (a BOM is fine); a bad byte is reported at its line and column."""
    try:
        return raw.decode("utf-8"), []
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8")) + 1
        message = f"the file is not UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded"
        return None, [Violation(file, line, col, "", message)]


def load_manifests(
    paths: Sequence[str],
    max_runs: int,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> tuple[list[Manifest], list[Violation]]:
    """Every manifest under `paths` (after the pipeline filters): the valid ones and all violations.

    Raises UsageError when a path is missing, a folder holds no manifests, or the filters leave none.
    """
    files = select_pipelines(find_manifest_files(paths), include, exclude)
    if not files:
        raise UsageError("no manifests left after the --pipeline/--exclude filters")
    # The cycle collector would walk the growing pile of loaded values over and over: a fifth of the
    # time of validating 1 000 files.
    with cycles_left_alone():
        return _load(files, max_runs)


def _load(files: Sequence[Path], max_runs: int) -> tuple[list[Manifest], list[Violation]]:
    # A document's line and column maps weigh far more than its manifest: each is let go once checked,
    # keeping only what the checks across files look at (validate of 50 000 backfills: 264 MB -> 93 MB).
    documents: list[Document] = []
    violations: list[Violation] = []
    valid: list[Manifest] = []
    for path in files:
        document, problems = read_manifest(path)
        if document is not None:
            problems = check_document(document, max_runs)
            if not problems:
                valid.append(build_manifest(document))
            documents.append(across_files_part(document))
        violations += problems
    across = check_across_files(documents)
    spoiled = {violation.file for violation in across}
    manifests = [manifest for manifest in valid if manifest.path not in spoiled]
    ordered = {str(path): index for index, path in enumerate(files)}
    violations = sorted(sort_violations(violations + across), key=lambda v: ordered.get(v.file, 0))
    return manifests, violations


def load_valid_manifests(
    paths: Sequence[str],
    max_runs: int,
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[Manifest]:
    """Like load_manifests, for commands that act on manifests: any violation raises ManifestError."""
    manifests, violations = load_manifests(paths, max_runs, include=include, exclude=exclude)
    if violations:
        raise ManifestError(violations)
    return manifests


def build_manifest(document: Document) -> Manifest:
    """Normalise a manifest that passed every check (UTC datetimes, {} meaning absent)."""
    data: dict[str, Any] = document.data
    pipeline_uuid: str = data["pipeline_uuid"]
    backfills = tuple(
        _build_backfill(document, pipeline_uuid, index, entry)
        for index, entry in enumerate(data["backfills"])
    )
    return Manifest(path=document.file, pipeline_uuid=pipeline_uuid, backfills=backfills)


def _build_backfill(
    document: Document, pipeline_uuid: str, index: int, entry: dict[str, Any]
) -> DesiredBackfill:
    return DesiredBackfill(
        pipeline_uuid=pipeline_uuid,
        name=entry["name"],
        schedule=_build_schedule(entry),
        variables=entry.get("variables") or None,
        settings=entry.get("settings") or None,
        state=entry.get("state"),
        id=entry.get("id"),
        previous_names=tuple(entry.get("previous_names", ())),
        description=entry.get("description"),
        retry_failed_before=_instant(entry.get("retry_failed_before")),
        source=document.source(("backfills", index)),
    )


def _instant(value: str | None) -> datetime | None:
    return None if value is None else parse_manifest_datetime(value)


def _build_schedule(entry: dict[str, Any]) -> Schedule | None:
    # The schema requires the schedule unless state is absent; an absent entry's schedule is never used.
    if any(key not in entry for key in SCHEDULE_KEYS):
        return None
    return Schedule(
        start=parse_manifest_datetime(entry["start_datetime"]),
        end=parse_manifest_datetime(entry["end_datetime"]),
        interval_type=entry["interval_type"],
        interval_units=entry["interval_units"],
    )
