"""`backfill-sync fmt` end to end: --check exit codes and diff, rewriting, invalid files left untouched."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest

from backfill_sync import atomic
from backfill_sync.cli import main

UNFORMATTED = """\
# yaml-language-server: $schema=../schemas/backfill-manifest.schema.json
pipeline_uuid: daily
backfills:
- interval_type: day   # per day
  name: a
  start_datetime: 2024-01-01
  end_datetime: "2024-01-31"
  interval_units: 1
"""
FORMATTED = """\
# yaml-language-server: $schema=../schemas/backfill-manifest.schema.json
pipeline_uuid: daily
backfills:
  - name: a
    start_datetime: '2024-01-01T00:00:00Z'
    end_datetime: '2024-01-31T00:00:00Z'
    interval_type: day # per day
    interval_units: 1
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["fmt", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    backfills = tmp_path / "backfills"
    backfills.mkdir()
    (backfills / "daily.yaml").write_text(UNFORMATTED, encoding="utf-8")
    (backfills / "tidy.yaml").write_text(FORMATTED.replace("daily", "tidy"), encoding="utf-8")
    return backfills


def test_check_fails_with_a_diff_and_changes_nothing(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "--check", str(folder))
    assert code == 1
    path = folder / "daily.yaml"
    assert out.startswith(f"--- {path}\n+++ {path}\n@@ ")
    assert "-- interval_type: day   # per day\n" in out
    assert "+    start_datetime: '2024-01-01T00:00:00Z'\n" in out
    assert "tidy.yaml" not in out
    assert "1 file would be reformatted, 1 already formatted" in err
    assert path.read_text(encoding="utf-8") == UNFORMATTED


def test_rewrite_then_check_passes_and_a_second_run_changes_nothing(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, str(folder))
    assert (code, out) == (0, f"reformatted {folder / 'daily.yaml'}\n")
    assert (folder / "daily.yaml").read_text(encoding="utf-8") == FORMATTED
    assert run(capsys, "--check", str(folder))[:2] == (0, "")
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    code, out, err = run(capsys, str(folder))
    assert (code, out) == (0, "")
    assert "0 files reformatted, 2 already formatted" in err
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


def test_an_invalid_manifest_is_reported_and_nothing_is_touched(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = folder / "broken.yaml"
    broken.write_text(
        "pipeline_uuid: broken\nbackfills:\n- name: x\n  interval_type: Day\n", encoding="utf-8"
    )
    code, out, err = run(capsys, str(folder))
    assert code == 1
    assert out == ""
    assert f"{broken}:4:18: backfills[0].interval_type: must be one of" in err
    assert f"{broken}:3:3: backfills[0]: missing required key 'start_datetime'" in err
    assert (folder / "daily.yaml").read_text(encoding="utf-8") == UNFORMATTED
    assert broken.read_text(encoding="utf-8").endswith("Day\n")


def test_anchors_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    text = FORMATTED.replace("daily", "p").replace("  - name: a", "  - &first\n    name: a")
    path.write_text(text, encoding="utf-8")
    code, _, err = run(capsys, str(path))
    assert code == 1
    assert f"{path}:4:5: fmt does not rewrite anchors or aliases" in err
    assert path.read_text(encoding="utf-8") == text


def test_pipeline_filters_choose_the_files(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--check", "--exclude", "dai*", str(folder))[0] == 0
    assert run(capsys, "--check", "--pipeline", "daily", str(folder))[0] == 1
    code, _, err = run(capsys, "--check", "--pipeline", "nothing", str(folder))
    assert code == 1
    assert "no manifests left" in err


def test_a_missing_default_folder_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys)
    assert code == 1
    assert "backfills: no such folder" in err


def test_the_examples_are_formatted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    examples = Path(__file__).parent.parent / "examples" / "backfills"
    assert run(capsys, "--check", str(examples))[0] == 0
    copy = tmp_path / "backfills"
    shutil.copytree(examples, copy)
    assert run(capsys, str(copy))[:2] == (0, "")


def test_crlf_line_endings_become_lf_and_are_named(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = folder / "tidy.yaml"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    code, out, err = run(capsys, "--check", str(path))
    assert code == 1
    assert f"{path}: CRLF line endings would become LF" in err
    code, out, _ = run(capsys, str(path))
    assert (code, out) == (0, f"reformatted {path} (CRLF line endings -> LF)\n")
    assert path.read_bytes() == FORMATTED.replace("daily", "tidy").encode()


def test_a_write_error_names_the_file_and_what_was_written_before(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "zz.yaml").write_text(UNFORMATTED.replace("daily", "zz"), encoding="utf-8")
    real_write = atomic.write_atomically

    def fill_the_disk_after_one(path: Path, text: str) -> None:
        if path.name == "zz.yaml":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, text)

    monkeypatch.setattr(atomic, "write_atomically", fill_the_disk_after_one)
    code, out, err = run(capsys, str(folder))
    assert code == 1
    assert out == f"reformatted {folder / 'daily.yaml'}\n"
    assert err == (
        f"Error: cannot write {folder / 'zz.yaml'}: No space left on device; "
        f"files written before this one: {folder / 'daily.yaml'}\n"
    )
    assert (folder / "zz.yaml").read_text(encoding="utf-8") == UNFORMATTED.replace("daily", "zz")


def test_an_absent_entry_with_only_a_name_is_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "daily.yaml"
    path.write_text("pipeline_uuid: daily\nbackfills:\n- state: absent\n  name: old-one\n", encoding="utf-8")
    code, out, _ = run(capsys, str(path))
    assert (code, out) == (0, f"reformatted {path}\n")
    expected = "pipeline_uuid: daily\nbackfills:\n  - name: old-one\n    state: absent\n"
    assert path.read_text(encoding="utf-8") == expected
    assert run(capsys, "--check", str(path))[:2] == (0, "")
