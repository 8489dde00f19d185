"""`goldloop datasets ...`: talk to a running server over HTTP (not to the database)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from goldloop.cli.groups import Group
from goldloop.cli.remote import api_errors, http_options
from goldloop.client import ApiError, Client
from goldloop.domain.example_formats import FORMATS, format_for_filename


@click.group(cls=Group)
def datasets() -> None:
    """Golden datasets on a running server: list, export, import."""


@datasets.command("list")
@http_options
@api_errors
def list_cmd(endpoint: str, api_key: str | None) -> None:
    """List datasets with their newest version, example count and tags."""
    with Client(endpoint, api_key) as client:
        for d in client.list_datasets():
            tags = ", ".join(f"{t}=v{v}" for t, v in sorted(d["tags"].items()))
            click.echo(f"{d['name']}\tv{d['version']}\t{d['example_count']} examples\t{tags}")


@datasets.command("export")
@click.argument("dataset")
@click.option("-o", "--output", default=None, help="File to write (default: stdout).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Default: from the output file's extension, else jsonl.",
)
@click.option("--as-of", default=None, help="Version number, tag or ISO time (default: newest).")
@http_options
@api_errors
def export_cmd(
    dataset: str,
    output: str | None,
    fmt: str | None,
    as_of: str | None,
    endpoint: str,
    api_key: str | None,
) -> None:
    """Export DATASET (id or name) as JSONL, CSV or Parquet."""
    fmt = fmt or (format_for_filename(output) if output else None) or "jsonl"
    if output is None and fmt == "parquet" and sys.stdout.isatty():
        raise click.UsageError("Parquet is binary: write it to a file with -o")
    with Client(endpoint, api_key) as client:
        data = client.export_dataset(dataset, format=fmt, as_of=as_of)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    Path(output).write_bytes(data)
    click.echo(f"wrote {output} ({len(data)} bytes, {fmt})", err=True)


@datasets.command("import")
@click.argument("dataset")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default=None, help="Default: from extension."
)
@click.option("--create", is_flag=True, help="Create the dataset if it does not exist.")
@click.option("--message", default=None, help="Note stored on the new version.")
@http_options
@api_errors
def import_cmd(
    dataset: str,
    file: str,
    fmt: str | None,
    create: bool,
    message: str | None,
    endpoint: str,
    api_key: str | None,
) -> None:
    """Import FILE into DATASET as one new version (examples with a known id are updated)."""
    fmt = fmt or format_for_filename(file)
    if fmt is None:
        raise click.UsageError(f"cannot tell the format of {file}: pass --format")
    with Client(endpoint, api_key) as client:
        if create:
            try:
                client.get_dataset(dataset)
            except ApiError as exc:
                if exc.status != 404:
                    raise
                client.create_dataset(dataset)
        result = client.import_dataset(
            dataset, Path(file).read_bytes(), format=fmt, message=message
        )
    click.echo(
        f"{dataset}: version {result['version']} "
        f"(added {len(result['added'])}, updated {len(result['updated'])}, "
        f"unchanged {len(result['unchanged'])})"
    )
