"""The importer's decisions without a server: which Mage errors mean "a row it cannot read", skip reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from backfill_sync.errors import ApiError
from backfill_sync.importer import (
    LOCAL_SCHEMA,
    build_manifest_text,
    find_schema_reference,
    manifest_entry,
    read_selected_backfills,
    unexpressible,
)
from backfill_sync.models import LiveBackfill
from backfill_sync.wire import backfill_from_wire

POISONED = "'fortnight' is not among the defined enum values. Enum name: intervaltype."


def api_error(detail: str) -> ApiError:
    return ApiError(method="GET", path="/api/backfills", code=500, error_type=None, detail=detail)


class FailingReader:
    """Every listing of everything fails with `detail`; pipeline `bad` fails alone too, `good` is empty."""

    def __init__(self, detail: str) -> None:
        self.detail = detail

    def list_backfills(self, pipeline_uuid: str | None = None) -> list[LiveBackfill]:
        if pipeline_uuid in (None, "bad"):
            raise api_error(self.detail)
        return []

    def list_pipeline_uuids(self) -> list[str]:
        return ["bad", "good"]


def test_a_row_mage_cannot_read_skips_only_its_pipeline() -> None:
    grouped, skipped = read_selected_backfills(FailingReader(POISONED), (), ())
    assert grouped == {}
    assert [item.pipeline_uuid for item in skipped] == ["bad"]
    assert "Mage cannot list its backfills" in str(skipped[0])


@pytest.mark.parametrize(
    "detail",
    [
        pytest.param("database is locked", id="ordinary-500"),
        pytest.param("Permission denied", id="permission"),
    ],
)
def test_other_mage_errors_stop_import(detail: str) -> None:
    with pytest.raises(ApiError, match=detail):
        read_selected_backfills(FailingReader(detail), (), ())


def wire_row(**fields: object) -> LiveBackfill:
    row = {
        "id": 4,
        "pipeline_uuid": "p",
        "name": "n",
        "start_datetime": "2024-01-01 00:00:00",
        "end_datetime": "2024-01-02 00:00:00",
        "interval_type": "day",
        "interval_units": 1,
    }
    return backfill_from_wire({**row, **fields})


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        pytest.param(
            {"start_datetime": "next tuesday"},
            "its start_datetime 'next tuesday' cannot be parsed",
            id="start-unparseable",
        ),
        pytest.param(
            {"end_datetime": "2024-13-45"}, "its end_datetime '2024-13-45' cannot be parsed", id="end-bad"
        ),
        pytest.param(
            {"start_datetime": None},
            "its schedule is incomplete in Mage (no start_datetime)",
            id="start-missing",
        ),
        pytest.param({}, None, id="fine"),
    ],
)
def test_skip_reasons_name_what_is_wrong(fields: dict[str, object], reason: str | None) -> None:
    backfill = wire_row(**fields)
    assert unexpressible(backfill) == reason
    assert (manifest_entry(backfill, pinned=False)[1]) == reason


@pytest.mark.parametrize(
    ("schema_at", "out_dir", "expected"),
    [
        pytest.param("repo", "repo/backfills", "../schemas/backfill-manifest.schema.json", id="repo-root"),
        pytest.param("repo", "repo/a/b", "../../schemas/backfill-manifest.schema.json", id="deeper"),
        pytest.param(
            "repo/backfills", "repo/backfills", "schemas/backfill-manifest.schema.json", id="inside"
        ),
        pytest.param(None, "repo/backfills", None, id="no-local-copy"),
        pytest.param(".", "repo/backfills", None, id="above-the-git-root-not-looked-at"),
    ],
)
def test_the_modeline_points_at_the_repository_schema(
    tmp_path: Path, schema_at: str | None, out_dir: str, expected: str | None
) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    if schema_at is not None:
        (tmp_path / schema_at / "schemas").mkdir(parents=True, exist_ok=True)
        (tmp_path / schema_at / LOCAL_SCHEMA).write_text("{}", encoding="utf-8")
    reference = find_schema_reference(tmp_path / out_dir, cwd=tmp_path)
    assert reference == expected
    if reference is not None:
        assert (tmp_path / out_dir / reference).resolve().is_file()


def test_without_a_schema_reference_there_is_no_modeline() -> None:
    imported, _ = build_manifest_text("p", [wire_row()], file="p.yaml", max_runs=100)
    assert imported is not None
    assert imported.text.startswith("pipeline_uuid: p\n")
    assert "yaml-language-server" not in imported.text


def test_the_manifest_carries_the_schema_reference() -> None:
    imported, skipped = build_manifest_text(
        "p", [wire_row()], file="p.yaml", max_runs=100, schema="../schemas/backfill-manifest.schema.json"
    )
    assert skipped == [] and imported is not None
    assert imported.text.startswith(
        "# yaml-language-server: $schema=../schemas/backfill-manifest.schema.json\npipeline_uuid: p\n"
    )
