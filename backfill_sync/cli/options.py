"""Options shared by several commands, defined once so they mean the same thing everywhere."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click
from click.core import ParameterSource

from backfill_sync.connection import build_connection
from backfill_sync.errors import UsageError
from backfill_sync.models import DEFAULT_MAGE_URL, DEFAULT_REQUEST_TIMEOUT, MAGE_PUBLIC_API_KEY

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_MAX_RUNS = 10_000
DEFAULT_MAX_TOTAL_RUNS = 10_000


def _compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def _pass_connection(func: F) -> F:
    """Turn the connection options into one checked `connection: MageConnection` argument."""

    @functools.wraps(func)
    def wrapper(
        *args: Any,
        url: str,
        api_key: str,
        token: str | None,
        email: str | None,
        password: str | None,
        request_timeout: float,
        **kw: Any,
    ) -> Any:
        from_default = click.get_current_context().get_parameter_source("url") == ParameterSource.DEFAULT
        if os.environ.get("MAGE_URL") == "" and from_default:
            # click treats an empty variable as unset; in CI that is a missing secret, not "use localhost".
            raise UsageError("MAGE_URL is set but empty (a missing CI secret?); set it, or unset it")
        connection = build_connection(url, api_key, token, email, password, request_timeout=request_timeout)
        return func(*args, connection=connection, **kw)

    return cast(F, wrapper)


mage_connection_options = _compose(
    click.option(
        "--url",
        envvar="MAGE_URL",
        default=DEFAULT_MAGE_URL,
        show_default=True,
        help="Mage server URL [env MAGE_URL].",
    ),
    click.option(
        "--api-key",
        envvar="MAGE_API_KEY",
        default=MAGE_PUBLIC_API_KEY,
        show_default="Mage's public key",
        help="Mage API key, sent as X-API-KEY [env MAGE_API_KEY].",
    ),
    click.option(
        "--token",
        envvar="MAGE_TOKEN",
        default=None,
        help="User token (raw, or the JWT from /api/sessions); beats a login [env MAGE_TOKEN].",
    ),
    click.option(
        "--email",
        envvar="MAGE_EMAIL",
        default=None,
        help="Log in with this email when no token is given [env MAGE_EMAIL].",
    ),
    click.option(
        "--password",
        envvar="MAGE_PASSWORD",
        default=None,
        help="Password for --email [env MAGE_PASSWORD].",
    ),
    click.option(
        "--request-timeout",
        envvar="MAGE_REQUEST_TIMEOUT",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_REQUEST_TIMEOUT,
        show_default=True,
        metavar="SECONDS",
        help="Give up on one request to Mage when its answer has not fully arrived after this many "
        "seconds (it is retried a few times; once Mage has answered nothing for three of these, the "
        "command stops) [env MAGE_REQUEST_TIMEOUT].",
    ),
    _pass_connection,
)


max_runs_option = click.option(
    "--max-runs",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_RUNS,
    show_default=True,
    help="Largest number of pipeline runs one backfill may imply.",
)

max_total_runs_option = click.option(
    "--max-total-runs",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_TOTAL_RUNS,
    show_default=True,
    help="Fail (exit 1, nothing applied) when the pipeline runs the plan sets off (starts, restarts, "
    "retries, new dates) add up to more than this. plan and apply share it, so a pull request's plan "
    "fails exactly when its apply would.",
)

pipeline_filter_options = _compose(
    click.option(
        "--pipeline",
        "pipelines",
        multiple=True,
        metavar="GLOB",
        help="Only pipelines whose uuid matches this glob (repeatable).",
    ),
    click.option(
        "--exclude",
        "excludes",
        multiple=True,
        metavar="GLOB",
        help="Skip pipelines whose uuid matches this glob (repeatable).",
    ),
)


def format_option(*choices: str, help: str) -> Callable[[F], F]:
    """`--format` (parameter `output_format`), text by default, with the formats a command offers."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["text", *choices]),
        default="text",
        show_default=True,
        help=help,
    )
