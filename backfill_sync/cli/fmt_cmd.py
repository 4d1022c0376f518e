"""`backfill-sync fmt`: rewrite manifests in their canonical form, or check that they are in it."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

import click

from backfill_sync.atomic import write_one_of_many
from backfill_sync.cli.options import max_runs_option, pipeline_filter_options
from backfill_sync.errors import ManifestError, UsageError
from backfill_sync.manifests.canonical import format_manifest, unformattable
from backfill_sync.manifests.loader import find_manifest_files, load_manifests, select_pipelines
from backfill_sync.manifests.yaml_loader import parse_yaml
from backfill_sync.models import Violation

HELP = """Rewrite manifests in one canonical form, keeping every comment.

PATHS are manifest files or folders (their *.yaml/*.yml files, not recursive); the default is
backfills/. The canonical form: keys in a fixed order (pipeline_uuid, backfills; per backfill
name, description, id, previous_names, start_datetime, end_datetime, interval_type,
interval_units, variables, settings, state, retry_failed_before), datetimes as quoted UTC
('2024-01-01T00:00:00Z', offsets converted, dates as midnight), 2-space indentation with list items
under `backfills:`, quotes only where YAML needs them, one trailing newline. Comments stay with the
key below them; the `# yaml-language-server: $schema=...` modeline stays on top. Windows (CRLF) line endings
become LF; fmt says so for each such file, since the diff lines then look identical.

\b
    backfill-sync fmt                       # rewrite backfills/*.yaml, list what changed
    backfill-sync fmt --check               # CI: exit 1 and print a diff if one is not formatted
    backfill-sync fmt --check | patch -p0   # the diff applies as it is

\b
Manifests are validated first (as `validate` does); when one is invalid nothing is rewritten,
the problems are listed, and the exit code is 1. Manifests using anchors or aliases are refused.
Exit code 0: everything is (now) formatted; 1: --check found unformatted files, or an error.
"""


@click.command(help=HELP)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--check", is_flag=True, help="Change nothing; print a diff and exit 1 if a file is not formatted."
)
@max_runs_option
@pipeline_filter_options
def fmt(
    paths: tuple[str, ...], check: bool, max_runs: int, pipelines: tuple[str, ...], excludes: tuple[str, ...]
) -> int:
    files = select_pipelines(find_manifest_files(paths), pipelines, excludes)
    if not files:
        raise UsageError("no manifests left after the --pipeline/--exclude filters")
    texts = _validated_texts(files, max_runs)
    changed = [(path, text, new) for path, text in texts if (new := _formatted(path, text)) != text]
    if check:
        for path, text, new in changed:
            click.echo(_diff(path, text, new), nl=False)
            if _has_crlf(text):
                click.echo(f"{path}: CRLF line endings would become LF", err=True)
        _summarise(len(changed), len(texts), "would be reformatted")
        return 1 if changed else 0
    written: list[Path] = []
    for path, text, new in changed:
        write_one_of_many(path, new, written)
        written.append(path)
        click.echo(f"reformatted {path}{' (CRLF line endings -> LF)' if _has_crlf(text) else ''}")
    _summarise(len(changed), len(texts), "reformatted")
    return 0


def _validated_texts(files: Sequence[Path], max_runs: int) -> list[tuple[Path, str]]:
    """Each file's text, after every file passed validate's checks and is one fmt can rewrite."""
    _, violations = load_manifests([str(path) for path in files], max_runs)
    if violations:
        raise ManifestError(violations)
    texts = [(path, path.read_bytes().decode("utf-8")) for path in files]
    refused: list[Violation] = []
    for path, text in texts:
        refused += unformattable(text, str(path))
    if refused:
        raise ManifestError(refused)
    return texts


def _formatted(path: Path, text: str) -> str:
    document, problems = parse_yaml(text, str(path))
    if document is None:  # validated a moment ago: only a file changed meanwhile gets here
        raise ManifestError(problems)
    return format_manifest(text, document.data)


def _has_crlf(text: str) -> bool:
    # Told apart from the diff, whose `-` and `+` lines would otherwise look the same.
    return "\r\n" in text


def _diff(path: Path, text: str, new: str) -> str:
    lines = difflib.unified_diff(
        text.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=str(path), tofile=str(path)
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def _summarise(changed: int, total: int, verb: str) -> None:
    unchanged = total - changed
    click.echo(f"{changed} file{'' if changed == 1 else 's'} {verb}, {unchanged} already formatted", err=True)
