"""`backfill-sync show PLAN.json`: a saved plan rendered as plan rendered it; anything else refused."""

from __future__ import annotations

import json

import pytest

from backfill_sync.cli import main
from backfill_sync.models import LiveBackfill
from backfill_sync.planfile import dump_plan
from backfill_sync.render import PLAN_FORMAT_VERSION, render_plan_markdown, render_plan_text
from tests.factories import desired, live, manifest, plan_of


@pytest.fixture
def saved(tmp_path):
    live_backfills: list[LiveBackfill] = [live(1, "kept"), live(2, "stray")]
    plan = plan_of(
        manifest(desired("new", state="started"), desired("kept", end="2024-02-29")),
        live_backfills=live_backfills,
    )
    path = tmp_path / "plan.json"
    path.write_text(dump_plan(plan), encoding="utf-8")
    return path, plan


@pytest.mark.parametrize(
    ("output_format", "render"),
    [
        pytest.param("text", lambda plan: render_plan_text(plan, color=False), id="text"),
        pytest.param("markdown", render_plan_markdown, id="markdown"),
    ],
)
def test_show_renders_the_saved_plan_as_plan_did(saved, capsys, output_format, render):
    path, plan = saved
    assert main(["show", "--format", output_format, str(path)]) == 0
    out = capsys.readouterr().out
    assert out == render(plan)
    assert '"new"' in out and "2024-02-29" in out


def test_show_json_is_the_saved_plan(saved, capsys):
    path, _ = saved
    assert main(["show", "--format", "json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param("not json", "not a saved plan: invalid JSON", id="not-json"),
        pytest.param('{"a": 1}', "not a saved backfill-sync plan (no format_version)", id="other-json"),
        pytest.param(
            json.dumps({"format_version": PLAN_FORMAT_VERSION, "ok": True}),
            "not a valid saved plan",
            id="apply-result",
        ),
        pytest.param('{"format_version": 99}', "format_version 99 is not supported", id="newer"),
        pytest.param(b"\xff\xfe", "cannot read saved plan", id="not-utf8"),
    ],
)
def test_show_refuses_a_file_that_is_not_a_plan(tmp_path, capsys, content, message):
    path = tmp_path / "plan.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    assert main(["show", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err and "Traceback" not in captured.err


def test_show_names_a_missing_file(tmp_path, capsys):
    assert main(["show", str(tmp_path / "missing.json")]) == 1
    assert "cannot read saved plan" in capsys.readouterr().err


def test_show_refuses_a_plan_changed_after_it_was_saved(saved, capsys):
    path, _ = saved
    document = json.loads(path.read_text(encoding="utf-8"))
    document["allow_restart"] = not document["allow_restart"]
    path.write_text(json.dumps(document), encoding="utf-8")
    assert main(["show", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "Error: " in captured.err and "Traceback" not in captured.err
