"""Statuses as text, Markdown and JSON, from values (no server)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
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
        "failed      p/failing (id 1)  31/31 dates finished  22 completed, 9 failed; failed dates: "
        "2024-01-03, 2024-01-09..2024-01-11, 2024-01-20, 2024-01-22, 2024-01-24 and 2 more"
    )
    assert lines[1] == "running     p/running (id 2)  0/31 dates finished  31 running"
    assert lines[2].startswith("cancelled   p/stopped (id 3)  31/31 dates finished")
    assert lines[3] == "not started p/fresh (id 4, unmanaged)"
    assert lines[-1] == (
        "Status: 4 backfills: 0 completed, 1 running, 1 failed, 0 incomplete, "
        "1 cancelled, 1 not started, 0 not applied; 9 failed dates, 0 cancelled dates."
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
    assert "| p/failing \\(id 1\\) | failed | 31/31 | 22 | 9 | 0 | 0 |" in text


def cancelled_one_by_one() -> StatusReport:
    """A started backfill (Mage says running forever) whose dates 4 and 5 were cancelled one by one."""
    runs = january_runs()[:5]
    runs[3] = run(4, "2024-01-04", "cancelled")
    runs[4] = run(5, "2024-01-05", "cancelled")
    backfill = live(1, "narrowed", status="running", end="2024-01-05 00:00:00")
    progress = window_progress(backfill.schedule(), runs)
    return StatusReport("http://mage:6789", (BackfillStatus("p", backfill, desired("narrowed"), progress),))


def test_cancelled_dates_are_counted_and_named_as_cancelled_in_every_format():
    report = cancelled_one_by_one()
    text = render_status_text(report, color=False).splitlines()
    assert text[0] == (
        "incomplete  p/narrowed (id 1)  5/5 dates finished  3 completed, 2 cancelled; "
        "cancelled dates: 2024-01-04..2024-01-05"
    )
    assert text[-1].endswith(
        "1 incomplete, 0 cancelled, 0 not started, 0 not applied; 0 failed dates, 2 cancelled dates."
    )
    document = json.loads(render_status_json(report))
    (backfill,) = document["backfills"]
    assert (backfill["dates"]["failed"], backfill["dates"]["cancelled"], backfill["dates"]["finished"]) == (
        0,
        2,
        5,
    )
    assert (document["summary"]["failed_dates"], document["summary"]["cancelled_dates"]) == (0, 2)
    assert document["outcome"] == "failed"  # not reprocessed: exit codes treat them as failed
    markdown = render_status_markdown(report)
    assert "| incomplete | 5/5 | 3 | 0 | 2 | 0 |" in markdown
    assert "cancelled dates: 2024\\-01\\-04\\.\\.2024\\-01\\-05 |" in markdown
    assert "failed dates" not in markdown.split("| failed and cancelled dates |")[1]


def test_a_backfill_completed_before_it_was_declared_cancelled_is_completed():
    backfill = live(1, "done-then-cancelled", status="completed", end="2024-01-05 00:00:00")
    progress = window_progress(backfill.schedule(), january_runs()[:5])
    report = StatusReport(
        "http://mage",
        (BackfillStatus("p", backfill, desired("done-then-cancelled", state="cancelled"), progress),),
    )
    assert report.backfills[0].verdict == "completed"
    assert (
        render_status_text(report, color=False).splitlines()[-1].startswith("Status: 1 backfill: 1 completed")
    )


def test_text_and_markdown_say_when_it_started_and_completed():
    backfill = dataclasses.replace(
        live(1, "timed", status="completed", end="2024-01-05 00:00:00"),
        started_at=datetime(2026, 12, 1, 21, 2, 28, 500, tzinfo=UTC),
        completed_at=datetime(2026, 12, 1, 21, 2, 39, tzinfo=UTC),
    )
    progress = window_progress(backfill.schedule(), january_runs()[:5])
    report = StatusReport("http://mage", (BackfillStatus("p", backfill, desired("timed"), progress),))
    assert (
        render_status_text(report, color=False)
        .splitlines()[0]
        .endswith("5 completed  started 2026-12-01T21:02:28Z, completed 2026-12-01T21:02:39Z")
    )
    assert "| 2026-12-01T21:02:28Z | 2026-12-01T21:02:39Z |" in render_status_markdown(report)
