"""`backfill-sync emulator`: serve the Mage-compatible emulator until SIGTERM/SIGINT, or start it detached."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO

import click

from backfill_sync.emulator import EmulatorConfig, EmulatorServer
from backfill_sync.errors import UsageError

OWNER_EMAIL, OWNER_PASSWORD = "admin@admin.com", "admin"
PID_VARIABLE = "BACKFILL_SYNC_EMULATOR_PID"
DETACH_TIMEOUT = 30.0

HELP = f"""Serve a Mage 0.9.80-compatible backfill API on 127.0.0.1 (for tests and demos).

The first line printed is the URL. Auth is on by default with Mage's public api key, the owner
{OWNER_EMAIL}/{OWNER_PASSWORD}, an Editor editor@example.com/editor and a Viewer
viewer@example.com/viewer. It runs until Ctrl-C or SIGTERM.

Its own endpoints under /_emulator/ make dates fail, complete runs, inject faults (errors, latency,
dropped connections) and show the requests it got: docs/emulator.md lists them. For example:

\b
    curl -X POST "$MAGE_URL/_emulator/runs/outcomes" \\
      -d '{{"pipeline_uuid": "daily_sales", "fail_dates": ["2024-01-03"]}}'


With --detach it starts in the background on a free port, waits until it answers, prints shell
commands that set MAGE_URL, the owner's login (MAGE_EMAIL, MAGE_PASSWORD) and {PID_VARIABLE},
and exits; `eval` them, and stop the emulator with `kill "${PID_VARIABLE}"`:

\b
    eval "$(backfill-sync emulator --pipeline daily_sales --detach)"
    backfill-sync plan backfills/
    kill "${PID_VARIABLE}"
"""


@click.command(help=HELP)
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
@click.option(
    "--detach",
    is_flag=True,
    help=f"Run in the background; print `export` lines (MAGE_URL, login, {PID_VARIABLE}) for eval.",
)
def emulator(port: int, pipelines: tuple[str, ...], no_auth: bool, run_seconds: float, detach: bool) -> int:
    if detach:
        arguments = [
            f"--port={port}",
            f"--run-seconds={run_seconds}",
            *(f"--pipeline={p}" for p in pipelines),
        ]
        click.echo(start_detached([*arguments, *(["--no-auth"] if no_auth else [])], auth_on=not no_auth))
        return 0
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


def start_detached(arguments: list[str], *, auth_on: bool) -> str:
    """Start `emulator ARGUMENTS` in its own session, wait for its URL, and return the `export` lines.

    Its stdout is a pipe to this process only (a `$(...)` around us must not wait for the server), and
    its stderr an unlinked file, read back only when it fails to start.
    """
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "backfill_sync", "emulator", *arguments],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            start_new_session=True,
        )
        stdout = process.stdout
        assert stdout is not None
        url = _first_line(stdout)
        if not url.startswith("http://"):
            if process.poll() is None:
                process.kill()
            process.wait()
            stdout.close()
            errors.seek(0)
            reason = errors.read().strip().removeprefix("Error: ") or "it printed no URL"
            raise UsageError(f"the emulator did not start: {reason}")
        stdout.close()
    exports = {"MAGE_URL": url}
    if auth_on:
        exports |= {"MAGE_EMAIL": OWNER_EMAIL, "MAGE_PASSWORD": OWNER_PASSWORD}
    exports[PID_VARIABLE] = str(process.pid)
    click.echo(f"emulator listening on {url}; stop it with: kill {process.pid}", err=True)
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in exports.items())


def _first_line(stream: IO[str]) -> str:
    """The first line of `stream`, or '' when it ends (or stays silent) for DETACH_TIMEOUT seconds."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(DETACH_TIMEOUT)
    return line[0].strip() if line else ""
