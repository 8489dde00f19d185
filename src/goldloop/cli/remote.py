"""Options and error handling shared by the commands that talk to a running server over HTTP."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import httpx

from goldloop.client import ApiError

F = TypeVar("F", bound=Callable[..., Any])


def http_options(fn: F) -> F:
    fn = click.option(
        "--api-key",
        envvar="GOLDLOOP_API_KEY",
        default=None,
        help="API key. [env GOLDLOOP_API_KEY]",
    )(fn)
    fn = click.option(
        "--endpoint",
        envvar="GOLDLOOP_ENDPOINT",
        default="http://127.0.0.1:8700",
        show_default=True,
        help="Server URL. [env GOLDLOOP_ENDPOINT]",
    )(fn)
    return fn


def api_errors(fn: F) -> F:
    """Server errors and unreachable servers become one line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            click.echo(f"error: {exc.message} ({exc.status} {exc.code})", err=True)
            sys.exit(1)
        except httpx.TransportError as exc:
            click.echo(f"error: cannot reach the server: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]
