"""`goldloop payloads compact|retrain`: rewrite the stored run payloads of a SQLite database.

Like `goldloop keys`, both talk to the database directly (run them where the server's data
directory is), beside a running server: they write through their own single writer in short
transactions, a bounded batch at a time, so ingest goes on. Progress goes to stderr.
See ``goldloop.services.payload_maintenance``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import click
import sqlalchemy as sa

from goldloop.cli.groups import Group


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _pass(verb: str, done: Any) -> str:
    ratio = f" ({done.bytes_before / done.bytes_after:.1f}x)" if done.bytes_after else ""
    line = (
        f"{verb} {done.rows:,} runs ({done.values:,} values): "
        f"{_mb(done.bytes_before)} -> {_mb(done.bytes_after)}{ratio}"
    )
    if done.unreadable:
        line += f"; {done.unreadable:,} frames left as they are (their dictionary is missing)"
    if done.lost_races:
        line += f"; {done.lost_races:,} values changed meanwhile by ingest (left to it)"
    return line


class _Progress:
    """Where the pass is, on stderr, at most once a second."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.shown = time.monotonic()

    def __call__(self, phase: str, at: int, top: int, done: Any) -> None:
        now = time.monotonic()
        if self.quiet or now - self.shown < 1.0:
            return
        self.shown = now
        share = f" ({min(at, top) / top:.0%})" if top else ""
        click.echo(
            f"{phase}: run {min(at, top):,} of {top:,}{share}, {done.rows:,} rewritten, "
            f"{_mb(done.bytes_before)} -> {_mb(done.bytes_after)}",
            err=True,
        )


def _vacuum_hint(ctx: Any, freed: int) -> str:
    """Compressing a stored run frees space inside its page, which SQLite leaves there (new
    runs go to new pages): the file shrinks only when VACUUM rebuilds it."""
    path = sa.engine.make_url(ctx.settings.effective_database_url).database or "goldloop.db"
    return (
        f"the database file keeps its size: to give the {_mb(freed)} freed inside its pages "
        f"back to the disk, stop the server and run `sqlite3 {path} VACUUM` (it rewrites the "
        "file and needs that much free disk space again)"
    )


def register(
    cli: click.Group,
    storage_options: Callable[[Any], Any],
    friendly_errors: Callable[[Any], Any],
    settings_for: Callable[[str | None, str | None], Any],
    open_ctx: Callable[[Any], Any],
) -> None:
    """Add `goldloop payloads` to ``cli`` with the shared storage options of
    ``goldloop.cli.main`` (passed in: this module is imported by it)."""

    @contextlib.contextmanager
    def opened(data_dir: str | None, database_url: str | None) -> Iterator[Any]:
        """The service context of the database named, closed after; a pass with nothing to
        do says why and ends the command (exit 0)."""
        from goldloop.services import payload_maintenance as svc

        ctx = open_ctx(settings_for(data_dir, database_url))
        try:
            yield ctx
        except svc.NothingToDo as exc:
            click.echo(exc.message)
        finally:
            ctx.db.close()

    @cli.group(cls=Group)
    def payloads() -> None:
        """Compressed run payloads (SQLite): compact old runs, retrain the dictionary."""

    batch_option = click.option(
        "--batch-rows",
        type=click.IntRange(1, 10_000),
        default=500,
        show_default=True,
        help="Runs per read and per write transaction.",
    )
    quiet_option = click.option("--quiet", is_flag=True, help="No progress on stderr.")

    @payloads.command("compact")
    @storage_options
    @batch_option
    @click.option(
        "--max-rows",
        type=click.IntRange(1),
        default=None,
        help="Stop after about this many runs (run again to go on).",
    )
    @quiet_option
    @friendly_errors
    def compact_cmd(
        data_dir: str | None,
        database_url: str | None,
        batch_rows: int,
        max_rows: int | None,
        quiet: bool,
    ) -> None:
        """Compress the payloads still stored as text (runs stored before the database had its
        dictionary) with the newest dictionary. Safe beside a running server, to interrupt and
        to run again."""
        from goldloop.services import payload_maintenance as svc

        with opened(data_dir, database_url) as ctx:
            done = svc.compact(
                ctx, batch_rows=batch_rows, max_rows=max_rows, progress=_Progress(quiet)
            )
            if done.values or done.unreadable or done.lost_races:
                click.echo(_pass("compacted", done))
            else:
                click.echo(
                    "nothing to compact: every payload of 200 bytes or more is compressed "
                    "(compacted 0 runs)"
                )
            if not done.complete:
                click.echo("stopped at --max-rows: run again to compact the rest")
            if done.values:
                click.echo(_vacuum_hint(ctx, done.bytes_before - done.bytes_after))

    @payloads.command("retrain")
    @storage_options
    @click.option(
        "--recompress",
        is_flag=True,
        help="Also rewrite every stored frame onto the new dictionary, compact the text, and "
        "delete the dictionaries no frame names any more (after an erasure: removes the erased "
        "text's fragments from the dictionaries).",
    )
    @batch_option
    @quiet_option
    @friendly_errors
    def retrain_cmd(
        data_dir: str | None,
        database_url: str | None,
        recompress: bool,
        batch_rows: int,
        quiet: bool,
    ) -> None:
        """Train a new payload dictionary on the newest runs; new writes use it from now on
        (a running server from its next write)."""
        from goldloop.services import payload_maintenance as svc

        with opened(data_dir, database_url) as ctx:
            report = svc.retrain(
                ctx, recompress=recompress, batch_rows=batch_rows, progress=_Progress(quiet)
            )
            click.echo(
                f"trained dictionary {report.dictionary} on {report.samples:,} documents of the "
                "newest runs; new writes are compressed with it"
            )
            if report.recompressed is not None:
                click.echo(_pass("recompressed", report.recompressed))
            if report.compacted is not None and report.compacted.values:
                click.echo(_pass("compacted", report.compacted))
            if recompress:
                dropped = ", ".join(map(str, report.dropped)) or "none"
                click.echo(f"dropped dictionaries: {dropped}")
            if report.kept:
                kept = ", ".join(map(str, report.kept))
                why = (
                    "frames that cannot be read name them"
                    if recompress
                    else "frames name them; --recompress moves those onto the new one"
                )
                click.echo(f"kept older dictionaries: {kept} ({why})")
            passes = [p for p in (report.recompressed, report.compacted) if p is not None]
            freed = sum(p.bytes_before - p.bytes_after for p in passes)
            if freed > 0:
                click.echo(_vacuum_hint(ctx, freed))
