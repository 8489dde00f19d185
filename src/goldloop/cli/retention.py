"""`goldloop retention ...`, `goldloop traces delete`, `goldloop erase`, `goldloop audit`:
retention policies, deletion, erasure and the audit log on a running server over HTTP.

Deleting and erasing first ask the server for a preview (``dry_run``) and show its counts;
they go ahead only with ``--yes`` or when the person at the terminal confirms.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from goldloop.cli.groups import Group
from goldloop.cli.remote import api_errors, http_options
from goldloop.client import Client


def _counts(doc: dict[str, Any]) -> str:
    return (
        f"{doc['traces']} traces, {doc['runs']} runs, {doc['feedback']} feedback, "
        f"{doc['examples']} dataset examples ({doc['example_rows']} stored versions)"
    )


def _confirm(preview: dict[str, Any], verb: str, yes: bool) -> bool:
    click.echo(f"{verb} would remove {_counts(preview)}", err=True)
    if preview["runs"] == 0 and preview["examples"] == 0:
        return False
    if yes:
        return True
    if not sys.stdin.isatty():
        raise click.UsageError(f"{verb} needs --yes when not run at a terminal")
    return click.confirm(f"{verb} now? This cannot be undone", default=False, err=True)


@click.group(cls=Group)
def retention() -> None:
    """Retention policies: how long a project keeps its runs."""


@retention.command("show")
@http_options
@click.argument("project")
@api_errors
def retention_show(endpoint: str, api_key: str | None, project: str) -> None:
    """The policy of PROJECT (name or id) as JSON, with the runs it deleted so far."""
    with Client(endpoint, api_key) as client:
        click.echo(json.dumps(client.get_retention(project), indent=2, sort_keys=True))


@retention.command("set")
@http_options
@click.argument("project")
@click.option("--keep-days", type=int, required=True, help="Delete runs older than this.")
@click.option("--keep-with-feedback", is_flag=True, help="Keep traces that have feedback.")
@click.option(
    "--keep-in-datasets", is_flag=True, help="Keep traces with a run copied into a dataset."
)
@api_errors
def retention_set(
    endpoint: str,
    api_key: str | None,
    project: str,
    keep_days: int,
    keep_with_feedback: bool,
    keep_in_datasets: bool,
) -> None:
    """Set PROJECT's policy (admin key); the workers apply it in small batches."""
    with Client(endpoint, api_key) as client:
        policy = client.set_retention(
            project,
            keep_days,
            keep_with_feedback=keep_with_feedback,
            keep_in_datasets=keep_in_datasets,
        )
    kept = [
        name
        for name, on in (
            ("traces with feedback", policy["keep_with_feedback"]),
            ("traces in datasets", policy["keep_in_datasets"]),
        )
        if on
    ]
    extra = f", keeping {' and '.join(kept)}" if kept else ""
    click.echo(f"project {project!r} keeps runs {policy['keep_days']} days{extra}")


@retention.command("clear")
@http_options
@click.argument("project")
@api_errors
def retention_clear(endpoint: str, api_key: str | None, project: str) -> None:
    """Remove PROJECT's policy: it keeps every run again."""
    with Client(endpoint, api_key) as client:
        client.delete_retention(project)
    click.echo(f"project {project!r} has no retention policy now")


@click.command("delete")
@http_options
@click.option("--trace-id", "trace_ids", multiple=True, help="A trace to delete (repeatable).")
@click.option(
    "--filter",
    "filter_",
    default=None,
    help="Delete every trace with a run matching this filter (docs/filters.md).",
)
@click.option("--project", default=None, help="With --filter: only this project.")
@click.option("--dry-run", is_flag=True, help="Only show what would be deleted.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@api_errors
def traces_delete(
    endpoint: str,
    api_key: str | None,
    trace_ids: tuple[str, ...],
    filter_: str | None,
    project: str | None,
    dry_run: bool,
    yes: bool,
) -> None:
    """Delete traces (their runs and feedback) by id or by run filter (admin key). Shows the
    counts first and asks before deleting."""
    if bool(trace_ids) == bool(filter_):
        raise click.UsageError("give --trace-id (one or more) or --filter")
    ids = list(trace_ids) or None
    with Client(endpoint, api_key, timeout=600) as client:
        preview = client.delete_traces(ids, filter=filter_, project=project, dry_run=True)
        if dry_run:
            click.echo(json.dumps(preview, sort_keys=True))
            return
        if not _confirm(preview, "deleting", yes):
            click.echo("nothing deleted", err=True)
            return
        done = client.delete_traces(ids, filter=filter_, project=project)
    click.echo(f"deleted {_counts(done)}")


@click.command("erase")
@http_options
@click.option("--user-id", default=None, help="Erase the runs with this user_id.")
@click.option("--metadata", default=None, metavar="KEY=VALUE", help="Erase by a metadata value.")
@click.option("--filter", "filter_", default=None, help="Erase the runs matching this filter.")
@click.option("--dry-run", is_flag=True, help="Only show what would be erased.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@api_errors
def erase(
    endpoint: str,
    api_key: str | None,
    user_id: str | None,
    metadata: str | None,
    filter_: str | None,
    dry_run: bool,
    yes: bool,
) -> None:
    """Erase one person's data (admin key): the traces of their runs, the feedback on them and
    the dataset examples made from them in every version. The audit log records the counts."""
    meta: dict[str, Any] | None = None
    if metadata is not None:
        key, sep, value = metadata.partition("=")
        if not sep or not key:
            raise click.UsageError("--metadata takes KEY=VALUE")
        meta = {key: value}
    if sum(x is not None for x in (user_id, meta, filter_)) != 1:
        raise click.UsageError("give exactly one of --user-id, --metadata or --filter")
    with Client(endpoint, api_key, timeout=600) as client:
        preview = client.erase(user_id=user_id, metadata=meta, filter=filter_, dry_run=True)
        if dry_run:
            click.echo(json.dumps(preview, sort_keys=True))
            return
        if not _confirm(preview, "erasure", yes):
            click.echo("nothing erased", err=True)
            return
        done = client.erase(user_id=user_id, metadata=meta, filter=filter_)
    click.echo(f"erased {_counts(done)}")


@click.command("audit")
@http_options
@click.option("--action", default=None, help="Only this action, e.g. erasure or rule.created.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@api_errors
def audit(
    endpoint: str, api_key: str | None, action: str | None, limit: int, as_json: bool
) -> None:
    """The workspace's audit log, newest first (admin key)."""
    with Client(endpoint, api_key) as client:
        for i, entry in enumerate(client.audit_log(action=action, page_size=min(limit, 500))):
            if i >= limit:
                break
            if as_json:
                click.echo(json.dumps(entry, sort_keys=True))
                continue
            target = f"{entry['target_type']}:{entry['target_id']}" if entry["target_id"] else ""
            details = " ".join(f"{k}={v}" for k, v in sorted(entry["details"].items()))
            click.echo(
                f"{entry['at']}  {entry['action']:20}  {entry['actor']}  {target}  {details}"
            )


def register(cli: click.Group, traces: click.Group) -> None:
    cli.add_command(retention)
    cli.add_command(erase)
    cli.add_command(audit)
    traces.add_command(traces_delete)
