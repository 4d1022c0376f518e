"""`backfill-sync emulator`: serve the Mage-compatible emulator until SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import sys
import threading

import click

from backfill_sync.emulator import EmulatorConfig, EmulatorServer


@click.command()
@click.option("--port", type=int, default=0, show_default=True, help="Port on 127.0.0.1; 0 picks a free one.")
@click.option(
    "--pipeline", "pipelines", multiple=True, metavar="UUID", help="Create this pipeline (repeatable)."
)
@click.option("--no-auth", is_flag=True, help="Behave like Mage with REQUIRE_USER_AUTHENTICATION=0.")
@click.option(
    "--run-seconds",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Pipeline runs complete this long after they start; 0 = only when a test completes them.",
)
def emulator(port: int, pipelines: tuple[str, ...], no_auth: bool, run_seconds: float) -> int:
    """Serve a Mage 0.9.80-compatible backfill API on 127.0.0.1 (for tests and demos).

    The first line printed is the URL. Auth is on by default with Mage's public api key, the owner
    admin@admin.com/admin and an Editor editor@example.com/editor. Tests steer it through /_emulator/...
    """
    config = EmulatorConfig(port=port, pipelines=pipelines, auth_on=not no_auth, run_seconds=run_seconds)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with EmulatorServer(config) as server:
        click.echo(server.url)
        sys.stdout.flush()
        while not stopping.wait(0.5):
            pass
    return 0
