"""Options and error handling shared by the commands that talk to a running server over HTTP.

Every such command finds its server and key the same way: ``--endpoint``, else
``GOLDLOOP_ENDPOINT``, else http://127.0.0.1:8700; ``--api-key``, else ``GOLDLOOP_API_KEY``, else
the key file a local `goldloop serve` writes on its first start (``--key-file``, default
``.goldloop/admin-key``). Its errors say which URL and which key it used, and what chose them.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx
from click.core import ParameterSource

from goldloop.client import ApiError

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_ENDPOINT = "http://127.0.0.1:8700"
DEFAULT_KEY_FILE = ".goldloop/admin-key"
_META = "goldloop.remote"


def http_options(fn: F) -> F:
    """``--endpoint``, ``--api-key`` and ``--key-file``; the command gets ``endpoint`` and
    ``api_key`` (the key file's content when neither the option nor the variable gives one)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, key_file: str, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        endpoint_source = _source(ctx, "endpoint", "--endpoint", "GOLDLOOP_ENDPOINT")
        key_source = _source(ctx, "api_key", "--api-key", "GOLDLOOP_API_KEY")
        if kwargs.get("api_key") is None:
            path = Path(key_file)
            if path.is_file():
                kwargs["api_key"] = path.read_text().strip() or None
                key_source = f"the key file {path}"
            else:
                key_source = "none"
        ctx.meta[_META] = {
            "endpoint": kwargs.get("endpoint"),
            "endpoint_source": endpoint_source,
            "key_source": key_source,
            "has_key": kwargs.get("api_key") is not None,
            "key_file": key_file,
        }
        return fn(*args, **kwargs)

    options = (
        click.option(
            "--key-file",
            default=DEFAULT_KEY_FILE,
            show_default=True,
            help="Read the API key from this file when neither --api-key nor GOLDLOOP_API_KEY "
            "gives one (a local `goldloop serve` writes it on its first start).",
        ),
        click.option(
            "--api-key",
            envvar="GOLDLOOP_API_KEY",
            default=None,
            help="API key. [env GOLDLOOP_API_KEY]",
        ),
        click.option(
            "--endpoint",
            envvar="GOLDLOOP_ENDPOINT",
            default=DEFAULT_ENDPOINT,
            show_default=True,
            help="Server URL. [env GOLDLOOP_ENDPOINT]",
        ),
    )
    decorated: Any = wrapper
    for option in options:
        decorated = option(decorated)
    return decorated  # type: ignore[no-any-return]


def _source(ctx: click.Context, param: str, option: str, envvar: str) -> str:
    source = ctx.get_parameter_source(param)
    if source is ParameterSource.COMMANDLINE:
        return option
    if source is ParameterSource.ENVIRONMENT:
        return envvar
    return "the default"


def connection() -> dict[str, Any]:
    """What ``http_options`` resolved for the current command (empty outside one)."""
    ctx = click.get_current_context(silent=True)
    return dict(ctx.meta.get(_META, {})) if ctx is not None else {}


def unreachable(exc: Exception) -> str:
    """'cannot reach the server at URL (from SOURCE): why', and how to choose another."""
    conn = connection()
    where = ""
    if conn.get("endpoint"):
        where = f" at {conn['endpoint']} (from {conn['endpoint_source']})"
    return (
        f"cannot reach the server{where}: {exc}. Is `goldloop serve` running there? Choose "
        "the server with --endpoint URL or GOLDLOOP_ENDPOINT=URL."
    )


def missing_key() -> str:
    """No key from the option, the variable or the key file: say how to give one."""
    key_file = connection().get("key_file", DEFAULT_KEY_FILE)
    return (
        "no API key: give --api-key KEY or set GOLDLOOP_API_KEY=KEY (there is no key file at "
        f"{key_file}, which `goldloop serve` writes in the folder it runs in; --key-file reads "
        "another)"
    )


def refused_key(exc: ApiError) -> str:
    """A 401's message, naming the key that was sent (or that none was) and how to give one."""
    conn = connection()
    if not conn.get("has_key", True):
        return missing_key()
    source = conn.get("key_source", "--api-key")
    if source.startswith("the key file"):
        return (
            f"{exc.message}: the key came from {source}, which the `goldloop serve` started in "
            "that folder wrote; a server started elsewhere (or `goldloop demo`, which keeps its "
            "own) has another key: give it with --api-key KEY or GOLDLOOP_API_KEY=KEY"
        )
    return f"{exc.message} (the key came from {source})"


def api_errors(fn: F) -> F:
    """Server errors and unreachable servers become one line on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            message = refused_key(exc) if exc.status == 401 else exc.message
            click.echo(f"error: {message} ({exc.status} {exc.code})", err=True)
            sys.exit(1)
        except httpx.TransportError as exc:
            click.echo(f"error: {unreachable(exc)}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]
