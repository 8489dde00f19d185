"""`goldloop export` and `goldloop import`: a whole workspace to documented files and back.

Like `goldloop keys`, both talk to the database directly (run them where the server's data
directory or database URL is reachable): an operator moving servers exports on the old machine
and imports on the new one, ids, timestamps and history kept, which the HTTP API (that assigns
ids and times itself) could not do. Progress goes to stderr.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

_ARCHIVE = (".tar.gz", ".tgz")


class _Progress:
    """Rows per file on stderr, at most once a second (and when a file is done)."""

    def __init__(self, verb: str, quiet: bool) -> None:
        self.verb, self.quiet = verb, quiet
        self.started = self.shown = time.monotonic()
        self.file = ""
        self.file_started = self.started
        self.rows = 0

    def __call__(self, file: str, rows: int) -> None:
        now = time.monotonic()
        if file != self.file:
            self.file, self.file_started = file, now
        self.rows = rows
        if not self.quiet and now - self.shown >= 1.0:
            rate = rows / max(now - self.file_started, 1e-6)
            click.echo(f"{self.verb}: {file} {rows:,} rows ({rate:,.0f}/s)", err=True)
            self.shown = now


def register(
    cli: click.Group,
    storage_options: Callable[[Any], Any],
    friendly_errors: Callable[[Any], Any],
    settings_for: Callable[[str | None, str | None, bool], Any],
    open_ctx: Callable[[Any], Any],
) -> None:
    """Add the two commands to ``cli`` with the shared storage options of ``goldloop.cli.main``
    (passed in: this module is imported by it)."""

    @cli.command("export")
    @storage_options
    @click.argument("target", type=click.Path(path_type=Path))
    @click.option("--workspace", default="default", show_default=True, help="Workspace name.")
    @click.option(
        "--project", "projects", multiple=True, help="Only this project (id or name; repeatable)."
    )
    @click.option(
        "--dataset", "datasets", multiple=True, help="Only this dataset (id or name; repeatable)."
    )
    @click.option("--no-otlp", is_flag=True, help="Leave out traces.otlp.jsonl (import skips it).")
    @click.option("--quiet", is_flag=True, help="No progress on stderr.")
    @friendly_errors
    def export_cmd(
        data_dir: str | None,
        database_url: str | None,
        target: Path,
        workspace: str,
        projects: tuple[str, ...],
        datasets: tuple[str, ...],
        no_otlp: bool,
        quiet: bool,
    ) -> None:
        """Export a workspace (or some projects and datasets) to TARGET, a new directory or a
        .tar.gz file: JSON Lines with a manifest (docs/export.md)."""
        from goldloop.services import workspace_export as svc

        ctx = open_ctx(settings_for(data_dir, database_url, True))
        progress = _Progress("export", quiet)
        archive = target.name.endswith(_ARCHIVE)
        try:
            if archive:
                if target.exists():
                    raise click.ClickException(f"{target} exists already")
                with tempfile.TemporaryDirectory(dir=target.parent or None) as tmp:
                    stem = target.name.removesuffix(".tar.gz").removesuffix(".tgz")
                    folder = Path(tmp) / stem
                    doc = svc.export_workspace(
                        ctx,
                        workspace,
                        folder,
                        project_refs=projects,
                        dataset_refs=datasets,
                        otlp=not no_otlp,
                        progress=progress,
                    )
                    svc.archive(folder, target)
            else:
                doc = svc.export_workspace(
                    ctx,
                    workspace,
                    target,
                    project_refs=projects,
                    dataset_refs=datasets,
                    otlp=not no_otlp,
                    progress=progress,
                )
        finally:
            ctx.db.close()
        seconds = time.monotonic() - progress.started
        runs = doc["files"]["runs.jsonl"]["rows"]
        counts = ", ".join(
            f"{entry['rows']:,} {name.removesuffix('.jsonl')}"
            for name, entry in doc["files"].items()
            if entry["rows"] and name.endswith(".jsonl") and "otlp" not in name
        )
        click.echo(f"exported workspace {workspace!r} to {target}: {counts or 'nothing'}")
        click.echo(
            f"{seconds:.1f} s, {runs / max(seconds, 1e-6):,.0f} runs/s; "
            f"{doc['attachments']['files']} attached files",
            err=True,
        )
        for note in doc["notes"]:
            click.echo(f"note: {note}", err=True)

    @cli.command("import")
    @storage_options
    @click.argument("source", type=click.Path(exists=True, path_type=Path))
    @click.option(
        "--workspace",
        default=None,
        help="Target workspace (default: the exported one's name; created when absent).",
    )
    @click.option("--merge", is_flag=True, help="Add to a workspace that holds objects already.")
    @click.option("--quiet", is_flag=True, help="No progress on stderr.")
    @friendly_errors
    def import_cmd(
        data_dir: str | None,
        database_url: str | None,
        source: Path,
        workspace: str | None,
        merge: bool,
        quiet: bool,
    ) -> None:
        """Import an export (a directory or .tar.gz) into a workspace, ids kept. Everything is
        checked before anything is written; the workspace must be empty unless --merge."""
        from goldloop.services import workspace_import as svc

        ctx = open_ctx(settings_for(data_dir, database_url, False))
        progress = _Progress("import", quiet)
        try:
            report = svc.import_workspace(
                ctx, source, workspace=workspace, merge=merge, progress=progress
            )
        finally:
            ctx.db.close()
        seconds = time.monotonic() - progress.started
        counts = ", ".join(f"{n:,} {kind}" for kind, n in report.rows.items() if n)
        click.echo(f"imported into workspace {report.workspace!r}: {counts or 'nothing'}")
        runs = report.rows.get("runs", 0)
        click.echo(f"{seconds:.1f} s, {runs / max(seconds, 1e-6):,.0f} runs/s", err=True)
        for name in report.disabled_channels:
            click.echo(
                f"channel {name!r} is disabled: its URL and keys were not exported; create it "
                "again and point its alert rules at the new one",
                err=True,
            )
        for name in report.disabled_rules:
            click.echo(
                f"rule {name!r} is disabled: its webhook URL or evaluator credentials were not "
                "exported; set them (PATCH the rule's actions), then enable it",
                err=True,
            )
