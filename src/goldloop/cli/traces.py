"""`goldloop traces export|import`: move a project's traces in and out as OTLP/JSON Lines.

Both talk to a running server over HTTP through ``goldloop.client.Client`` (so they work against
a remote instance and go through the same authentication, validation and merge as any client):
export streams ``GET /api/v1/projects/{id}/export``; import posts each line to ``/v1/traces``.
On a terminal both show their progress on stderr.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

import click
import httpx

from goldloop.cli.groups import Group
from goldloop.cli.remote import (
    http_options,
    missing_key,
    refused_key,
    unreachable,
)
from goldloop.client import ApiError, Client


def _client(endpoint: str, api_key: str | None) -> Client:
    if api_key is None:
        raise click.UsageError(missing_key())
    return Client(endpoint, api_key, timeout=300)


@contextmanager
def _failures(verb: str, progress: Callable[[], str] | None = None) -> Iterator[None]:
    """The server's refusal or a lost connection as a one-line error (exit status 1)."""
    try:
        yield
    except ApiError as exc:
        where = f" ({progress()})" if progress else ""
        message = refused_key(exc) if exc.status == 401 else exc.message
        raise click.ClickException(f"{verb} failed{where}: {exc.status}: {message}") from None
    except httpx.TransportError as exc:
        where = f" ({progress()})" if progress else ""
        raise click.ClickException(f"{verb} failed{where}: {unreachable(exc)}") from None
    except httpx.HTTPError as exc:
        where = f" ({progress()})" if progress else ""
        raise click.ClickException(f"{verb} failed{where}: {exc}") from None


def _counted(lines: Iterable[bytes], verb: str) -> Iterator[bytes]:
    """``lines`` unchanged; on a terminal, a progress line on stderr at most every 0.5 s."""
    show = sys.stderr.isatty()
    size = 0
    shown = time.monotonic()
    for batches, line in enumerate(lines, 1):
        size += len(line)
        if show and time.monotonic() - shown >= 0.5:
            click.echo(f"\r{verb} {batches} batches ({size / 1e6:.1f} MB) ...", err=True, nl=False)
            shown = time.monotonic()
        yield line
    if show:
        click.echo("\r\033[K", err=True, nl=False)


@click.group(cls=Group)
def traces() -> None:
    """Export and import traces as OTLP/JSON Lines (talks to a running server)."""


@traces.command("export")
@http_options
@click.option("--project", required=True, help="Project name (or id).")
@click.option(
    "--filter",
    "filter_",
    default=None,
    help="Only the runs matching this filter, e.g. 'root and feedback.correctness < 0.5' "
    "(docs/filters.md).",
)
@click.option(
    "--whole-traces",
    is_flag=True,
    help="With --filter: every run of each trace that has a matching run (without a filter "
    "every run goes out anyway).",
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), default="-", help="File (default stdout)."
)
def export_cmd(
    endpoint: str,
    api_key: str | None,
    project: str,
    filter_: str | None,
    whole_traces: bool,
    output: str,
) -> None:
    """Write the runs of PROJECT (or a filtered set) as OTLP/JSON Lines (GenAI attribute
    names). An unknown project or an invalid filter fails before the file is created."""
    lines = 0
    with _client(endpoint, api_key) as client:
        stream = client.export_traces(project, filter=filter_, whole_traces=whole_traces)
        with _failures("export"):
            first = next(stream, None)  # the server's verdict on the project and the filter
        sink: BinaryIO = sys.stdout.buffer if output == "-" else open(output, "wb")  # noqa: SIM115
        try:
            with _failures("export", lambda: f"after {lines} batches; the output is incomplete"):
                head = [first] if first is not None else []
                for line in _counted(itertools.chain(head, stream), "exported"):
                    sink.write(line + b"\n")
                    lines += 1
        finally:
            if sink is not sys.stdout.buffer:
                sink.close()
    what = f"runs matching {filter_!r}" if filter_ else "runs"
    click.echo(f"exported {lines} batches of {what} of project {project!r}", err=True)


@traces.command("import")
@http_options
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option(
    "--project",
    default=None,
    help="Project to import into (default: the one each line names in service.name).",
)
def import_cmd(endpoint: str, api_key: str | None, file: str, project: str | None) -> None:
    """Load an OTLP/JSON Lines file (e.g. from `goldloop traces export`) into the server."""
    source = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    sent = 0

    def counted() -> Iterator[bytes]:
        nonlocal sent
        for line in _counted(source, "imported"):
            yield line
            sent += 1  # resumed: the server acknowledged that line

    try:
        with (
            _client(endpoint, api_key) as client,
            _failures("import", lambda: f"after {sent} batches were stored"),
        ):
            result = client.import_traces(counted(), project=project)
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    click.echo(
        f"imported {result.batches} batches ({result.rejected_spans} spans rejected)", err=True
    )
    for error in result.errors[:5]:
        click.echo(f"  rejected: {error}", err=True)
    if result.rejected_spans:
        sys.exit(1)
