"""`backfill-sync emulator`: serve the Mage-compatible emulator until SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import sys
import time

import click

from backfill_sync.emulator import EmulatorConfig, EmulatorServer
from backfill_sync.errors import UsageError


@click.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1; 0 picks a free one.",
)
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

    \b
        backfill-sync emulator --pipeline daily_sales &      # prints e.g. http://127.0.0.1:41163
        export MAGE_URL=http://127.0.0.1:41163 MAGE_EMAIL=admin@admin.com MAGE_PASSWORD=admin
        backfill-sync plan backfills/
    """
    config = EmulatorConfig(port=port, pipelines=pipelines, auth_on=not no_auth, run_seconds=run_seconds)
    # A plain list, not a threading.Event: the handler runs in the main thread, and Event.set() there
    # deadlocks when the signal lands while that thread holds the Event's own lock inside wait().
    stop_requested: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _: stop_requested.append(number))
    try:
        server = EmulatorServer(config)
    except OSError as exc:
        raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    with server:
        click.echo(server.url)
        sys.stdout.flush()
        while not stop_requested:
            time.sleep(0.1)
    return 0
