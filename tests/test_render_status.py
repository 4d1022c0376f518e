"""Statuses as text, Markdown and JSON, from values (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from backfill_sync.render.status import render_status_json, render_status_markdown, render_status_text
from backfill_sync.runs import window_progress
from backfill_sync.status import BackfillStatus, StatusReport
from tests.factories import desired, january_runs, live, run

ROOT = Path(__file__).resolve().parent.parent


def report() -> StatusReport:
    runs = january_runs()
    for day in (3, 9, 10, 11, 20, 22, 24, 26, 28):
        runs[day - 1] = run(day, f"2024-01-{day:02d}", "failed")
    failing = live(1, "failing", status="failed")
    running = live(2, "running", status="failed")  # Mage says failed; its runs say otherwise
    cancelled = live(3, "stopped", status="cancelled")
    return StatusReport(
        "http://user:secret@mage:6789/",
        (
            BackfillStatus("p", failing, desired("failing"), window_progress(failing.schedule(), runs)),
            BackfillStatus(
                "p", running, desired("running"), window_progress(running.schedule(), january_runs("running"))
            ),
            BackfillStatus(
                "p",
                cancelled,
                desired("stopped", state="cancelled"),
                window_progress(cancelled.schedule(), runs),
            ),
            BackfillStatus("p", live(4, "fresh"), None, None),
        ),
    )


def test_text_names_failed_dates_as_ranges_the_first_few_and_how_many_more():
    text = render_status_text(report(), color=False)
    lines = text.splitlines()
    assert lines[0] == (
        "failed      p/failing (id 1)  31/31 dates done  22 completed, 9 failed: "
        "2024-01-03, 2024-01-09..2024-01-11, 2024-01-20, 2024-01-22, 2024-01-24 and 2 more"
    )
    assert lines[1] == "running     p/running (id 2)  0/31 dates done  31 running"
    assert lines[2].startswith("cancelled   p/stopped (id 3)  31/31 dates done")
    assert lines[3] == "not started p/fresh (id 4, unmanaged)"
    assert lines[-1] == (
        "Status: 4 backfills: 0 completed, 1 running, 1 failed (9 failed dates), 0 incomplete, "
        "1 cancelled, 1 not started, 0 not applied."
    )


def test_json_lists_every_failed_date_and_validates():
    document = json.loads(render_status_json(report()))
    schema = json.loads((ROOT / "schemas" / "status.schema.json").read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)
    assert document["mage_url"] == "http://mage:6789"
    assert document["outcome"] == "failed"
    assert len(document["backfills"][0]["failed_dates"]) == 9
    assert document["backfills"][2]["state"] == "cancelled"  # declared cancelled: not a failure


def test_markdown_is_a_table_led_by_its_marker():
    text = render_status_markdown(report())
    assert text.startswith("<!-- backfill-sync:status -->\n### backfill-sync status\n")
    assert "| p/failing \\(id 1\\) | failed | 31/31 | 22 | 9 | 0 |" in text
