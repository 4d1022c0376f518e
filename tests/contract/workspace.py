"""A manifest folder for one end-to-end test, and how to find what it made in Mage."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path

from backfill_sync.client import MageClient
from backfill_sync.models import LiveBackfill
from tests.contract.servers import MageServer


class Workspace:
    """A manifest folder for one test: backfill names carry a unique prefix, so tests never collide."""

    def __init__(self, root: Path, server: MageServer, pipeline_uuid: str | None = None) -> None:
        self.root = root
        self.server = server
        self.pipeline_uuid = pipeline_uuid or server.pipeline_uuid
        self.prefix = f"e2e-{uuid.uuid4().hex[:8]}"
        self.folder = root / "backfills"
        self.folder.mkdir()

    def name(self, label: str) -> str:
        return f"{self.prefix}-{label}"

    def write(self, *entries: str) -> Path:
        body = "".join(textwrap.indent(textwrap.dedent(entry).strip() + "\n", "  ") for entry in entries)
        path = self.folder / f"{self.pipeline_uuid}.yaml"
        path.write_text(f"pipeline_uuid: {self.pipeline_uuid}\nbackfills:\n{body}", encoding="utf-8")
        return path

    def entry(
        self, label: str, *, extra: str = "", start: str = "2024-01-01", end: str = "2024-01-05"
    ) -> str:
        return (
            f"- name: {self.name(label)}\n"
            f"  start_datetime: '{start}'\n"
            f"  end_datetime: '{end}'\n"
            f"  interval_type: day\n"
            f"  interval_units: 1\n" + textwrap.indent(textwrap.dedent(extra).strip(), "  ")
        )


def mine(mage: MageClient, ws: Workspace) -> list[LiveBackfill]:
    rows = mage.list_backfills(ws.pipeline_uuid)
    return [row for row in rows if (row.name or "").startswith(ws.prefix)]


def by_name(mage: MageClient, ws: Workspace, label: str) -> LiveBackfill:
    rows = [row for row in mine(mage, ws) if row.name == ws.name(label)]
    assert len(rows) == 1, f"expected exactly one {ws.name(label)!r}, found {len(rows)}"
    return rows[0]


def clean_up(mage: MageClient, ws: Workspace) -> None:
    """Cancel what the workspace's backfills still run, then delete them."""
    for live in mine(mage, ws):
        if live.status in ("initial", "running"):
            mage.set_status(ws.pipeline_uuid, live.id, "cancelled")
        mage.delete_backfill(ws.pipeline_uuid, live.id)
