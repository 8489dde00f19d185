"""`goldloop redaction show|set|clear|preview`: the PII redaction settings of a running server
over HTTP (admin key). See docs/security.md."""

from __future__ import annotations

import json
from typing import Any

import click

from goldloop.cli.groups import Group
from goldloop.cli.remote import api_errors, http_options
from goldloop.client import Client


def _echo(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


@click.group(cls=Group)
def redaction() -> None:
    """PII redaction at ingest: what is replaced before anything is stored."""


@redaction.command("show")
@http_options
@click.option("--project", default=None, help="The configuration that applies to this project.")
@api_errors
def redaction_show(endpoint: str, api_key: str | None, project: str | None) -> None:
    """The configuration that applies, as JSON, with where it comes from (source)."""
    with Client(endpoint, api_key) as client:
        _echo(client.get_redaction(project))


@redaction.command("set")
@http_options
@click.option("--project", default=None, help="Set this project's own configuration.")
@click.option(
    "--builtins",
    default="",
    help="Built-in detectors: all, or a comma list of email,phone,card,iban,ip,secret.",
)
@click.option(
    "--rule",
    "rules",
    multiple=True,
    metavar="NAME=REGEX",
    help="A custom rule (repeatable); replaced by <NAME>.",
)
@click.option(
    "--mode",
    type=click.Choice(["placeholder", "hash"]),
    default="placeholder",
    show_default=True,
    help="hash: <EMAIL:3f9a12bc>, a keyed hash (the server needs redaction_hash_key).",
)
@click.option(
    "--config",
    "config_file",
    type=click.File("r"),
    default=None,
    help="Read the whole configuration from a JSON file (- for stdin) instead.",
)
@api_errors
def redaction_set(
    endpoint: str,
    api_key: str | None,
    project: str | None,
    builtins: str,
    rules: tuple[str, ...],
    mode: str,
    config_file: Any,
) -> None:
    """Set the workspace's configuration (or a project's). Applies to data stored from now on."""
    if config_file is not None:
        config = json.load(config_file)
    else:
        parsed = []
        for rule in rules:
            name, sep, pattern = rule.partition("=")
            if not sep or not name or not pattern:
                raise click.UsageError(f"--rule {rule!r}: use NAME=REGEX")
            parsed.append({"name": name, "pattern": pattern})
        names = "all" if builtins.strip() == "all" else [b for b in builtins.split(",") if b]
        config = {"builtins": names, "rules": parsed, "mode": mode}
    with Client(endpoint, api_key) as client:
        _echo(client.set_redaction(config, project=project))


@redaction.command("clear")
@http_options
@click.option("--project", default=None, help="Remove this project's own configuration.")
@api_errors
def redaction_clear(endpoint: str, api_key: str | None, project: str | None) -> None:
    """Remove the workspace's (or project's) own configuration; the default applies again."""
    with Client(endpoint, api_key) as client:
        client.delete_redaction(project=project)
    click.echo(f"redaction configuration of {project or 'the workspace'} removed")


@redaction.command("preview")
@http_options
@click.option("--project", default=None, help="Use this project's configuration.")
@click.argument("text")
@api_errors
def redaction_preview(endpoint: str, api_key: str | None, project: str | None, text: str) -> None:
    """What the server would store for TEXT (nothing is stored)."""
    with Client(endpoint, api_key) as client:
        _echo(client.preview_redaction(text, project=project))
