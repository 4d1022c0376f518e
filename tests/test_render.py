"""Rendered plans: golden files for text, colour, Markdown and JSON; the summary line; truncation; schema.

Rewrite the golden files after an intended change with `UPDATE_GOLDENS=1 pytest tests/test_render.py`
and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from backfill_sync.models import ACTION_KINDS, Action, Plan
from backfill_sync.render import (
    MARKDOWN_MARKER,
    PlanSummary,
    escape_markdown,
    plan_to_dict,
    public_url,
    render_plan_json,
    render_plan_markdown,
    render_plan_text,
    render_summary_line,
)
from backfill_sync.render.text import describe_action_dates, describe_progress
from backfill_sync.runs import progress_from_counts
from tests.factories import desired, every_action_plan, live, manifest, name_only_absent, plan_of, run

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDENS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), f"{name} differs; UPDATE_GOLDENS=1 rewrites it"


@pytest.fixture(scope="module")
def plan() -> Plan:
    return every_action_plan()


@pytest.fixture(scope="module")
def plan_schema() -> dict[str, object]:
    schema = json.loads((ROOT / "schemas" / "plan.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema  # type: ignore[no-any-return]


def test_the_golden_plan_has_every_action_type(plan: Plan):
    actions = plan.actions()
    assert {action.kind for action in actions} == set(ACTION_KINDS)
    restarts = [action for action in actions if action.kind == "restart"]
    assert sorted(action.is_blocked for action in restarts) == [False, True]
    assert any(item.warnings for item in plan.items())
    assert any(item.notes for item in plan.items())
    assert any(pipeline.unmanaged for pipeline in plan.pipelines)
    assert any([a.kind for a in item.actions] == ["create", "start"] for item in plan.items())


@pytest.mark.parametrize(
    ("name", "render"),
    [
        pytest.param("plan_text.txt", lambda plan: render_plan_text(plan, color=False), id="text"),
        pytest.param("plan_text_color.txt", lambda plan: render_plan_text(plan, color=True), id="color"),
        pytest.param("plan.md", render_plan_markdown, id="markdown"),
        pytest.param("plan.json", render_plan_json, id="json"),
    ],
)
def test_golden(plan: Plan, name, render):
    check_golden(name, render(plan))


def test_colour_only_when_asked_and_only_as_decoration(plan: Plan):
    plain = render_plan_text(plan, color=False)
    coloured = render_plan_text(plan, color=True)
    assert "\x1b" not in plain
    assert "\x1b[" in coloured
    assert ANSI.sub("", coloured) == plain


def test_blocked_actions_say_why(plan: Plan):
    text = render_plan_text(plan, color=False)
    assert (
        '  ! restart "to-restart" (id 13, cancelled): +31 runs '
        "[blocked: restarting re-creates every run; pass --allow-restart to plan and apply it]\n"
    ) in text


def test_a_create_alike_an_unmanaged_backfill_warns_in_every_format():
    renamed = plan_of(
        manifest(desired("reload-eu", state="started")),
        live_backfills=[live(2, "reload-eu-2024-q1", status="completed")],
    )
    hint = (
        'same window and variables as unmanaged id 2 "reload-eu-2024-q1": renamed? '
        "add previous_names: [reload-eu-2024-q1] to keep it"
    )
    assert f"! warning: {hint}" in render_plan_text(renamed, color=False)
    assert f"!     warning: {hint}" in render_plan_markdown(renamed)
    (item,) = json.loads(render_plan_json(renamed))["pipelines"][0]["items"]
    assert item["warnings"] == [hint]


@pytest.mark.parametrize(
    ("progress", "text"),
    [
        pytest.param(
            progress_from_counts(31, {"completed": 28, "failed": 3}),
            "completed 28/31, 3 failed",
            id="counts-of-the-window",
        ),
        pytest.param(
            progress_from_counts(20, {"cancelled": 11, "running": 20}),
            "31 dates with runs, at least 11 outside the window of 20: 0 completed, 11 cancelled, 20 running",
            id="counts-beyond-the-window",
        ),
    ],
)
def test_progress_sets_only_the_windows_dates_against_its_total(progress, text):
    assert describe_progress(progress) == text


def test_text_ends_with_the_summary_line(plan: Plan):
    text = render_plan_text(plan, color=False)
    assert text.splitlines()[-1] == (
        "Plan: 2 to create, 3 to update, 2 to start, 1 to restart, 1 to retry, 1 to run new dates, "
        "2 to cancel, 2 to delete, 1 blocked; +68 runs, ? stopped"
    )


ZEROS = "0 to create, 0 to update, 0 to start, 0 to restart, 0 to retry, 0 to run new dates, 0 to cancel"


@pytest.mark.parametrize(
    ("summary", "line"),
    [
        pytest.param(PlanSummary(), "No changes.", id="nothing"),
        pytest.param(
            PlanSummary(create=1, update=2, start=1, start_runs=744),
            "Plan: 1 to create, 2 to update, 1 to start, 0 to restart, 0 to retry, 0 to run new dates, "
            "0 to cancel, 0 to delete, 0 blocked; +744 runs, 0 stopped",
            id="the-issue-example",
        ),
        pytest.param(
            PlanSummary(cancel=1, stop_runs=None),
            f"Plan: {ZEROS.replace('0 to cancel', '1 to cancel')}, 0 to delete, 0 blocked; "
            "+0 runs, ? stopped",
            id="cancel",
        ),
        pytest.param(
            PlanSummary(restart=2, restart_runs=30, delete=1),
            f"Plan: {ZEROS.replace('0 to restart', '2 to restart')}, 1 to delete, 0 blocked; "
            "+30 runs, 0 stopped",
            id="restart-and-delete",
        ),
        pytest.param(
            PlanSummary(retry=1, retry_runs=3, run=2, new_date_runs=4),
            "Plan: 0 to create, 0 to update, 0 to start, 0 to restart, 1 to retry, 2 to run new dates, "
            "0 to cancel, 0 to delete, 0 blocked; +7 runs, 0 stopped",
            id="retries-and-new-dates",
        ),
        pytest.param(
            PlanSummary(blocked=1),
            f"Plan: {ZEROS}, 0 to delete, 1 blocked; +0 runs, 0 stopped",
            id="only-blocked-is-still-a-change",
        ),
        pytest.param(
            PlanSummary(start=1, start_runs=None),
            f"Plan: {ZEROS.replace('0 to start', '1 to start')}, 0 to delete, 0 blocked; +? runs, 0 stopped",
            id="unknown-runs",
        ),
    ],
)
def test_summary_line(summary: PlanSummary, line: str):
    assert render_summary_line(summary) == line


def test_no_changes_says_so_and_still_lists_unmanaged():
    quiet = plan_of(
        manifest(desired("a", state="started")),
        live_backfills=[live(1, "a", status="running"), live(2, "by-hand", status=None)],
    )
    assert render_plan_text(quiet, color=False) == (
        'Pipeline etl_daily\n  Unmanaged, left alone:\n    id 2 "by-hand" (never started)\n\nNo changes.\n'
    )


def test_nothing_at_all_is_just_no_changes():
    quiet = plan_of(manifest(desired("a")), live_backfills=[live(1, "a")])
    assert render_plan_text(quiet, color=False) == "No changes.\n"
    assert render_plan_markdown(quiet) == f"{MARKDOWN_MARKER}\n### backfill-sync plan\n\n**No changes.**\n"


def test_a_window_widened_at_both_ends_shows_two_ranges_of_new_dates():
    first_quarter = [
        run(n + 1, f"{datetime(2024, 1, 1) + timedelta(days=n):%Y-%m-%d}", "completed") for n in range(91)
    ]
    widened = plan_of(
        manifest(desired("q1", start="2023-12-30", end="2024-04-05", state="started")),
        live_backfills=[live(1, "q1", end="2024-03-31 00:00:00", status="completed")],
        runs={1: first_quarter},
    )
    assert ": 7 new dates (2023-12-30..2023-12-31, 2024-04-01..2024-04-05), +7 runs\n" in render_plan_text(
        widened, color=False
    )


def test_past_five_ranges_the_rest_are_counted_in_dates():
    every_other_day = tuple(datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=2 * n) for n in range(7))
    text = describe_action_dates(Action("retry", runs=7, dates=every_other_day), desired("a").schedule)
    assert text == (
        "7 failed dates (2024-01-01, 2024-01-03, 2024-01-05, 2024-01-07, 2024-01-09 and 2 more dates), "
        "+7 runs"
    )


@pytest.mark.parametrize(
    ("action", "shown"),
    [
        pytest.param(Action("cancel", runs=None), ": stops ? unfinished runs", id="cancel-unknown"),
        pytest.param(Action("cancel", runs=0), ": no unfinished runs", id="cancel-none"),
        pytest.param(Action("cancel", runs=1), ": stops 1 unfinished run", id="cancel-one"),
        pytest.param(Action("delete", runs=None), ": stops ? unfinished runs first", id="delete-unknown"),
        pytest.param(Action("start", runs=1), ": +1 run", id="start-one"),
        pytest.param(Action("update"), "", id="no-effect"),
    ],
)
def test_run_effects(action: Action, shown: str):
    from dataclasses import replace

    base = plan_of(manifest(desired("a")), live_backfills=[live(1, "a", status="running")])
    item = replace(base.items()[0], actions=(action,))
    text = render_plan_text(
        replace(base, pipelines=(replace(base.pipelines[0], items=(item,)),)), color=False
    )
    # One pair of parentheses (the id and where it stands), then the effect after a colon.
    assert f'{action.kind} "a" (id 1, running){shown}\n' in text


# ---------------------------------------------------------------------------------------------------------
# JSON


def test_rendered_plans_validate_against_the_schema(plan: Plan, plan_schema):
    for candidate in (plan, plan_of(), plan_of(manifest(desired("a")), live_backfills=[live(1, "a")])):
        jsonschema.validate(json.loads(render_plan_json(candidate)), plan_schema)


NAME_ONLY_ABSENT = plan_of(
    manifest(name_only_absent("gone"), name_only_absent("never-there")),
    live_backfills=[live(14, "gone", status="running", run_status_counts={"running": 2})],
)


def test_a_name_only_absent_entry_renders_in_every_format(plan_schema):
    text = render_plan_text(NAME_ONLY_ABSENT, color=False)
    assert '- delete "gone" (id 14, running)' in text
    assert "never-there" in text
    assert '"gone"' in render_plan_markdown(NAME_ONLY_ABSENT)
    document = json.loads(render_plan_json(NAME_ONLY_ABSENT))
    jsonschema.validate(document, plan_schema)
    gone, never = document["pipelines"][0]["items"]
    assert (gone["desired"]["schedule"], gone["after"], gone["actions"][0]["kind"]) == (None, None, "delete")
    assert (never["desired"]["schedule"], never["actions"]) == (None, [])


def test_the_schema_rejects_what_it_should(plan: Plan, plan_schema):
    document = plan_to_dict(plan)
    document["pipelines"][0]["items"][0]["actions"][0]["kind"] = "explode"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, plan_schema)


def test_the_packaged_plan_schema_is_the_published_one():
    packaged = ROOT / "backfill_sync" / "schemas" / "plan.schema.json"
    assert packaged.read_bytes() == (ROOT / "schemas" / "plan.schema.json").read_bytes()


def test_json_carries_everything_apply_needs(plan: Plan):
    document = plan_to_dict(plan)
    assert document["format_version"] == 2
    retried = next(i for p in document["pipelines"] for i in p["items"] if i["name"] == "retried")
    assert retried["actions"] == [
        {
            "kind": "retry",
            "runs": 3,
            "blocked": None,
            "dates": ["2024-01-03T00:00:00Z", "2024-01-09T00:00:00Z", "2024-01-10T00:00:00Z"],
            "ids": [],
        }
    ]
    twinned = next(i for p in document["pipelines"] for i in p["items"] if i["name"] == "twinned")
    assert [(a["kind"], a["ids"]) for a in twinned["actions"]] == [("delete_twins", [21])]
    assert retried["desired"]["retry_failed_before"] == "2024-06-01T12:00:00Z"
    assert retried["progress"] == {"total": 31, "counts": {"completed": 28, "failed": 3}}
    item = next(i for p in document["pipelines"] for i in p["items"] if i["name"] == "renamed")
    assert item["live_id"] == 10
    assert item["live_status"] == "running"
    assert item["fingerprint"].startswith("sha256:")
    assert item["before"]["name"] == "old-name"
    assert item["after"]["name"] == "renamed"
    assert item["desired"]["previous_names"] == ["old-name"]
    assert item["desired"]["description"] == "Q1 reload, renamed"
    assert item["desired"]["schedule"]["end_datetime"] == "2024-02-29T00:00:00Z"
    assert document["pipelines"][0]["unmanaged"][0]["id"] == 16


@pytest.mark.parametrize(
    ("url", "public"),
    [
        pytest.param("http://127.0.0.1:6789", "http://127.0.0.1:6789", id="plain"),
        pytest.param("https://admin:secret@mage.example.com/", "https://mage.example.com", id="userinfo"),
        pytest.param(
            "https://tok@mage.example.com:8443/mage/", "https://mage.example.com:8443/mage", id="user"
        ),
        pytest.param("http://mage:6789/?api_key=abc#x", "http://mage:6789", id="query"),
        pytest.param("http://u:p@[::1]:6789", "http://[::1]:6789", id="ipv6"),
    ],
)
def test_no_secrets_in_the_url(url: str, public: str):
    assert public_url(url) == public
    rendered = render_plan_json(Plan(url, ()))
    assert json.loads(rendered)["mage_url"] == public
    assert "secret" not in rendered and "abc" not in rendered


# ---------------------------------------------------------------------------------------------------------
# Markdown


def many_pipelines(count: int, items: int = 3) -> Plan:
    manifests = [
        manifest(*(desired(f"b{i}", pipeline=f"p{n:03}") for i in range(items)), pipeline=f"p{n:03}")
        for n in range(count)
    ]
    return plan_of(*manifests)


def test_markdown_starts_with_the_marker(plan: Plan):
    assert render_plan_markdown(plan).split("\n", 1)[0] == MARKDOWN_MARKER


def test_markdown_fits_untruncated_when_it_can():
    text = render_plan_markdown(many_pipelines(5))
    assert "not shown" not in text
    assert text.count("<details>") == 5


@pytest.mark.parametrize("max_chars", [8000, 20_000, 65536])
def test_markdown_truncates_whole_sections_from_the_end_and_says_which(max_chars: int):
    plan = many_pipelines(120)
    text = render_plan_markdown(plan, max_chars=max_chars)
    assert len(text) <= max_chars
    assert text.startswith(MARKDOWN_MARKER + "\n")
    shown = re.findall(r"<summary><code>(p\d+)</code>", text)
    notice = re.search(
        r"… (\d+) pipelines not shown \((.*)\); run `backfill-sync plan` to see the full plan", text
    )
    assert notice is not None
    left_out = [name.replace("\\", "") for name in notice.group(2).split(", ")]
    assert int(notice.group(1)) == len(left_out) == 120 - len(shown)
    assert shown + left_out == [f"p{n:03}" for n in range(120)]
    assert text.count("<details>") == text.count("</details>") == len(shown)
    assert "| p119 |" in text.replace("\\", "")  # the table still names every pipeline
    # and it used the room it had: one more section would not have fitted
    assert len(render_plan_markdown(plan, max_chars=max_chars + 1000)) > len(text)


def test_one_huge_pipeline_is_cut_item_by_item_not_dropped_whole():
    text = render_plan_markdown(many_pipelines(1, items=1500), max_chars=20_000)
    assert len(text) <= 20_000
    assert text.count("<details>") == 1
    shown = len(re.findall(r'^\+ create "b\d+"$', text, flags=re.MULTILINE))
    notice = re.search(r"… (\d+) more backfills of this pipeline not shown;", text)
    assert notice is not None
    assert shown > 10
    assert shown + int(notice.group(1)) == 1500


def test_markdown_drops_table_rows_last():
    text = render_plan_markdown(many_pipelines(200, items=1), max_chars=2000)
    assert len(text) <= 2000
    assert "<details>" not in text
    assert re.search(r"\| … \d+ more \|", text)
    assert "200 pipelines not shown" in text


def test_markdown_escapes_names_and_fences_values():
    nasty = "a|b_*c*<x>"
    plan = plan_of(
        manifest(desired("x", pipeline=nasty, variables={"sql": "```drop```"}), pipeline=nasty),
    )
    text = render_plan_markdown(plan)
    assert f"| {escape_markdown(nasty)} |" in text
    assert r"a\|b\_\*c\*\<x\>" in text
    assert "<code>a|b_*c*&lt;x&gt;</code>" in text
    assert "````diff\n" in text  # a longer fence than any backtick run inside
