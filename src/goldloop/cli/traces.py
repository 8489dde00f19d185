"""`goldloop traces export|import`: move a project's traces in and out as OTLP/JSON Lines.

Both talk to a running server over HTTP (so they work against a remote instance and go through
the same authentication, validation and merge as any client): export streams
``GET /api/v1/projects/{id}/export``; import posts each line to ``/v1/traces``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, BinaryIO

import click
import httpx

DEFAULT_ENDPOINT = "http://127.0.0.1:8700"


def _key(api_key: str | None, key_file: str) -> str:
    if api_key:
        return api_key
    path = Path(key_file)
    if path.is_file():
        return path.read_text().strip()
    raise click.UsageError(f"give --api-key (no key file at {path})")


def _client(endpoint: str, api_key: str | None, key_file: str) -> httpx.Client:
    return httpx.Client(
        base_url=endpoint.rstrip("/"), headers={"x-api-key": _key(api_key, key_file)}, timeout=300
    )


def _fail(response: httpx.Response) -> None:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:300]
        raise click.ClickException(f"{response.status_code}: {message}")


def _connection(fn: Any) -> Any:
    fn = click.option(
        "--key-file",
        default=".goldloop/admin-key",
        show_default=True,
        help="Read the API key from this file when --api-key is not given.",
    )(fn)
    fn = click.option(
        "--api-key",
        envvar="GOLDLOOP_API_KEY",
        default=None,
        help="API key of the workspace. [env GOLDLOOP_API_KEY]",
    )(fn)
    fn = click.option(
        "--endpoint",
        envvar="GOLDLOOP_ENDPOINT",
        default=DEFAULT_ENDPOINT,
        show_default=True,
        help="Goldloop server URL. [env GOLDLOOP_ENDPOINT]",
    )(fn)
    return fn


@click.group()
def traces() -> None:
    """Export and import traces as OTLP/JSON Lines (talks to a running server)."""


@traces.command("export")
@_connection
@click.option("--project", required=True, help="Project name.")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), default="-", help="File (default stdout)."
)
def export_cmd(
    endpoint: str, api_key: str | None, key_file: str, project: str, output: str
) -> None:
    """Write every run of PROJECT as OTLP/JSON Lines (GenAI attribute names)."""
    with _client(endpoint, api_key, key_file) as client:
        found = client.get("/api/v1/projects", params={"name": project})
        _fail(found)
        items = found.json()["items"]
        if not items:
            raise click.ClickException(f"no project named {project!r}")
        sink: BinaryIO = sys.stdout.buffer if output == "-" else open(output, "wb")  # noqa: SIM115
        lines = 0
        try:
            with client.stream("GET", f"/api/v1/projects/{items[0]['id']}/export") as response:
                if response.status_code >= 400:
                    response.read()
                    _fail(response)
                for line in response.iter_lines():
                    if line:
                        sink.write(line.encode() + b"\n")
                        lines += 1
        finally:
            if sink is not sys.stdout.buffer:
                sink.close()
    click.echo(f"exported {lines} batches of project {project!r}", err=True)


@traces.command("import")
@_connection
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option(
    "--project",
    default=None,
    help="Project to import into (default: the one each line names in service.name).",
)
def import_cmd(
    endpoint: str, api_key: str | None, key_file: str, file: str, project: str | None
) -> None:
    """Load an OTLP/JSON Lines file (e.g. from `goldloop traces export`) into the server."""
    headers = {"content-type": "application/json"}
    if project:
        headers["x-goldloop-project"] = project
    batches = rejected = 0
    source = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
    try:
        with _client(endpoint, api_key, key_file) as client:
            for raw in source:
                line = raw.strip()
                if not line:
                    continue
                response = client.post("/v1/traces", content=line, headers=headers)
                _fail(response)
                partial = response.json().get("partialSuccess") or {}
                rejected += int(partial.get("rejectedSpans") or 0)
                batches += 1
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    click.echo(f"imported {batches} batches ({rejected} spans rejected)", err=True)
    if rejected:
        sys.exit(1)
