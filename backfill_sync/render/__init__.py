"""Plans and apply results as text, JSON and Markdown, built from structured data; nothing here prints."""

from __future__ import annotations

from backfill_sync.render.markdown import MARKDOWN_MARKER, escape_markdown, render_plan_markdown
from backfill_sync.render.plan_json import PLAN_FORMAT_VERSION, plan_to_dict, public_url, render_plan_json
from backfill_sync.render.results import render_apply_json, render_apply_text
from backfill_sync.render.summary import PlanSummary, render_summary_line
from backfill_sync.render.text import render_plan_text

__all__ = [
    "MARKDOWN_MARKER",
    "PLAN_FORMAT_VERSION",
    "PlanSummary",
    "escape_markdown",
    "plan_to_dict",
    "public_url",
    "render_apply_json",
    "render_apply_text",
    "render_plan_json",
    "render_plan_markdown",
    "render_plan_text",
    "render_summary_line",
]
