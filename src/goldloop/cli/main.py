"""`goldloop` CLI: serve, db, keys, settings. Every option maps onto one field of ``Settings``."""

from __future__ import annotations

import functools
import gc
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from goldloop import _malloc
from goldloop._version import __version__
from goldloop.cli import automation
from goldloop.cli.canaries import canaries as canary_commands
from goldloop.cli.datasets import datasets as dataset_commands
from goldloop.cli.feedback_keys import feedback_keys as feedback_keys_commands
from goldloop.cli.groups import Group
from goldloop.domain.clock import to_iso
from goldloop.domain.errors import GoldloopError
from goldloop.settings import Settings, SettingsError, load_settings, settings_markdown

F = TypeVar("F", bound=Callable[..., Any])


def storage_options(fn: F) -> F:
    """--data-dir and --database-url, shared by every command that opens the store."""
    fn = click.option(
        "--database-url",
        default=None,
        help="Database URL; empty = SQLite in the data dir. [env GOLDLOOP_DATABASE_URL]",
    )(fn)
    fn = click.option(
        "--data-dir",
        default=None,
        type=click.Path(file_okay=False),
        help="Data directory (default ./.goldloop). [env GOLDLOOP_DATA_DIR]",
    )(fn)
    return fn


def log_options(fn: F) -> F:
    """--log-level and --log-format, for the commands that run a server or a worker."""
    fn = click.option(
        "--log-format",
        default=None,
        type=click.Choice(["text", "json"]),
        help="text, or json (one object per line). [env GOLDLOOP_LOG_FORMAT]",
    )(fn)
    fn = click.option(
        "--log-level", default=None, help="debug, info, warning, error. [env GOLDLOOP_LOG_LEVEL]"
    )(fn)
    return fn


def _refuse_newer_database(settings: Settings) -> None:
    """Exit with one line, before anything starts, when a newer release migrated the
    database (or it cannot be reached)."""
    import sqlalchemy as sa

    from goldloop.store import migrate
    from goldloop.store.database import create_engine

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.effective_database_url)
    try:
        migrate.check_not_ahead(engine)
    except sa.exc.OperationalError as exc:
        first = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc) else ""
        raise click.ClickException(
            f"cannot reach the database {settings.redacted_database_url()}: {first}"
        ) from None
    finally:
        engine.dispose()


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(overrides)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None


def _existing_database(settings: Settings, data_dir_option: str | None) -> Settings:
    """``settings`` when its database exists; else an error saying which data directory was
    looked at, what chose it, and how to point the command at another. Commands that only read
    or change what is there must not leave an empty database behind in the wrong folder."""
    url = settings.effective_database_url
    if not url.startswith("sqlite:"):
        return settings  # a server database: connecting says whether it is there
    path = Path(url.split(":///", 1)[1]) if ":///" in url else None
    if path is None or path.is_file():
        return settings
    if settings.database_url:
        raise click.ClickException(
            f"no Goldloop database at {path} (from --database-url or GOLDLOOP_DATABASE_URL)"
        )
    if data_dir_option is not None:
        source = "--data-dir"
    elif "GOLDLOOP_DATA_DIR" in os.environ:
        source = "GOLDLOOP_DATA_DIR"
    else:
        source = "the default, ./.goldloop in the current folder"
    raise click.ClickException(
        f"no Goldloop database in {settings.data_dir.resolve()} (the data directory, from "
        f"{source}). Run the command in the folder where `goldloop serve` runs, or point it at "
        "the server's data directory with --data-dir DIR or GOLDLOOP_DATA_DIR=DIR "
        "(`goldloop db upgrade` creates a new database)."
    )


def friendly_errors(fn: F) -> F:
    """Turn Goldloop errors into a one-line message and exit code 1 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except GoldloopError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="goldloop")
def cli() -> None:
    """Goldloop: traces -> feedback -> golden datasets -> experiments -> online evals -> alerts."""


@cli.command()
@storage_options
@click.option(
    "--host", default=None, help="Interface to bind (default 127.0.0.1). [env GOLDLOOP_HOST]"
)
@click.option("--port", default=None, type=int, help="Port (default 8700). [env GOLDLOOP_PORT]")
@click.option(
    "--workers-in-process/--no-workers",
    default=None,
    help="Run background workers inside the server (default on). [env GOLDLOOP_WORKERS_IN_PROCESS]",
)
@click.option(
    "--ingest-processes",
    default=None,
    type=click.IntRange(0, 64),
    help="Worker processes decoding OTLP and native ingest requests (default 2; 0: in the "
    "server process). "
    "[env GOLDLOOP_INGEST_PROCESSES]",
)
@click.option(
    "--otlp-grpc/--no-otlp-grpc",
    default=None,
    help="Also receive OTLP traces over gRPC on --otlp-grpc-port (default off). "
    "[env GOLDLOOP_OTLP_GRPC]",
)
@click.option(
    "--otlp-grpc-port",
    default=None,
    type=click.IntRange(0, 65535),
    help="Port of the OTLP/gRPC receiver (default 4317; 0: any free port). "
    "[env GOLDLOOP_OTLP_GRPC_PORT]",
)
@log_options
@friendly_errors
def serve(
    data_dir: str | None,
    database_url: str | None,
    host: str | None,
    port: int | None,
    workers_in_process: bool | None,
    ingest_processes: int | None,
    otlp_grpc: bool | None,
    otlp_grpc_port: int | None,
    log_level: str | None,
    log_format: str | None,
) -> None:
    """Run the API, OTLP receiver and dashboard (migrates the database first)."""
    import uvicorn

    from goldloop import log_format as logs
    from goldloop.http.app import create_app
    from goldloop.http.connections import protocol_class

    settings = _settings(
        data_dir=data_dir,
        database_url=database_url,
        host=host,
        port=port,
        workers_in_process=workers_in_process,
        ingest_processes=ingest_processes,
        otlp_grpc=otlp_grpc,
        otlp_grpc_port=otlp_grpc_port,
        log_level=log_level,
        log_format=log_format,
    )
    _refuse_newer_database(settings)
    logs.configure(settings.log_level, settings.log_format)
    grpc_port = settings.otlp_grpc_port or "(any free port: see the log)"
    grpc = f", OTLP/gRPC on {settings.host}:{grpc_port}" if settings.otlp_grpc else ""
    click.echo(
        f"Goldloop {__version__} on http://{settings.host}:{settings.port}{grpc} "
        f"(database: {settings.redacted_database_url()})"
    )
    if settings.malloc_tuning:
        _malloc.tune()
    app = create_app(settings)
    # Everything loaded so far (modules, the app) lives as long as the process: take it out of
    # the cyclic garbage collector's view, so the full collections that ingestion's many short-
    # lived objects trigger do not re-scan it each time (~10% less CPU per ingested span).
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # logging is configured above (log_format): uvicorn's records join it
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        proxy_headers=False,
        server_header=False,
        http=protocol_class(settings),  # a deadline for headers, a bound per client address
    )


@cli.command()
@storage_options
@log_options
@friendly_errors
def worker(
    data_dir: str | None, database_url: str | None, log_level: str | None, log_format: str | None
) -> None:
    """Run the background workers (rules, alerts, deliveries) as a separate process.

    Use with `goldloop serve --no-workers` at scale; several workers may share one PostgreSQL
    database (each unit of work is claimed in the database, so none is done twice).
    """
    import signal
    import threading

    from goldloop import log_format as logs
    from goldloop.workers.service_loops import Workers

    settings = _settings(
        data_dir=data_dir, database_url=database_url, log_level=log_level, log_format=log_format
    )
    _refuse_newer_database(settings)
    logs.configure(settings.log_level, settings.log_format)
    ctx = _open_ctx(settings)
    workers = Workers(ctx)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    workers.start()
    click.echo(f"goldloop worker running (database: {settings.redacted_database_url()})")
    stop.wait()
    click.echo("stopping: finishing the current work")
    workers.stop(settings.shutdown_timeout_s)
    ctx.db.close(settings.shutdown_timeout_s)


@cli.group(cls=Group)
def db() -> None:
    """Database schema management."""


@db.command("upgrade")
@storage_options
@friendly_errors
def db_upgrade(data_dir: str | None, database_url: str | None) -> None:
    """Apply all pending migrations."""
    from goldloop.store import migrate
    from goldloop.store.database import create_engine

    settings = _settings(data_dir=data_dir, database_url=database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.effective_database_url)
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine)
        after = migrate.current_revision(engine)
    finally:
        engine.dispose()
    click.echo(f"database at {after} (was {before or 'empty'})")


@db.command("current")
@storage_options
def db_current(data_dir: str | None, database_url: str | None) -> None:
    """Show the applied and the latest migration."""
    from goldloop.store import migrate
    from goldloop.store.database import create_engine

    settings = _existing_database(_settings(data_dir=data_dir, database_url=database_url), data_dir)
    engine = create_engine(settings.effective_database_url)
    try:
        click.echo(f"applied: {migrate.current_revision(engine) or 'none'}")
    finally:
        engine.dispose()
    click.echo(f"latest:  {migrate.head_revision()}")


@cli.group(cls=Group)
def keys() -> None:
    """API keys (run on the server's machine: talks to the database directly)."""


def _stored(data_dir: str | None, database_url: str | None) -> Settings:
    return _existing_database(_settings(data_dir=data_dir, database_url=database_url), data_dir)


def _open_ctx(settings: Settings) -> Any:
    from goldloop.services.context import ServiceContext
    from goldloop.store import migrate
    from goldloop.store.database import Database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.effective_database_url)
    migrate.upgrade(database.engine)
    database.start()
    return ServiceContext(db=database, settings=settings)


@keys.command("create")
@storage_options
@click.option("--workspace", default="default", show_default=True, help="Workspace name.")
@click.option("--name", default="cli", show_default=True, help="A label for the key.")
@click.option("--role", type=click.Choice(["admin", "member"]), default="member", show_default=True)
@click.option("--create-workspace", is_flag=True, help="Create the workspace if it does not exist.")
@friendly_errors
def keys_create(
    data_dir: str | None,
    database_url: str | None,
    workspace: str,
    name: str,
    role: str,
    create_workspace: bool,
) -> None:
    """Create an API key and print it (the only time it is shown)."""
    from goldloop.domain.errors import NotFound
    from goldloop.services import auth

    ctx = _open_ctx(_stored(data_dir, database_url))
    try:
        try:
            ws = auth.workspace_by_name(ctx, workspace)
        except NotFound:
            if not create_workspace:
                raise
            ws = auth.create_workspace(ctx, workspace)
        key = auth.create_key(ctx, ws.id, name, role)
    finally:
        ctx.db.close()
    click.echo(key.secret)
    click.echo(f"created {role} key {key.record.id} in workspace {ws.name!r}", err=True)


@keys.command("list")
@storage_options
@click.option("--workspace", default=None, help="Only this workspace's keys.")
@friendly_errors
def keys_list(data_dir: str | None, database_url: str | None, workspace: str | None) -> None:
    """List API keys (never their secrets)."""
    from goldloop.services import auth
    from goldloop.store.tenancy import list_workspaces

    ctx = _open_ctx(_stored(data_dir, database_url))
    try:
        names = {w.id: w.name for w in ctx.db.read(list_workspaces)}
        ws_id = auth.workspace_by_name(ctx, workspace).id if workspace else None
        rows = auth.list_keys(ctx, ws_id)
    finally:
        ctx.db.close()
    click.echo(f"{'id':36}  {'prefix':10}  {'role':6}  {'workspace':12}  {'status':8}  name")
    for k in rows:
        status = "revoked" if k.revoked_at else "active"
        click.echo(
            f"{k.id:36}  {k.prefix:10}  {k.role:6}  {names.get(k.workspace_id, '?'):12}  "
            f"{status:8}  {k.name}  (created {to_iso(k.created_at)})"
        )


@keys.command("revoke")
@storage_options
@click.argument("key_id")
@friendly_errors
def keys_revoke(data_dir: str | None, database_url: str | None, key_id: str) -> None:
    """Revoke the key with this id (see `goldloop keys list`)."""
    from goldloop.services import auth

    ctx = _open_ctx(_stored(data_dir, database_url))
    try:
        auth.revoke_key(ctx, key_id)
    finally:
        ctx.db.close()
    click.echo(f"revoked {key_id}")


@cli.command("settings")
@click.option("--markdown", is_flag=True, help="Print the configuration reference as Markdown.")
def settings_cmd(markdown: bool) -> None:
    """Show the effective settings (or the reference with --markdown)."""
    if markdown:
        click.echo(settings_markdown(), nl=False)
        return
    s = _settings()
    for name in s.__dataclass_fields__:
        click.echo(f"{name} = {s.shown(name)}")


cli.add_command(dataset_commands)
cli.add_command(automation.rules)
cli.add_command(automation.alerts)
cli.add_command(automation.judge_alignment)
cli.add_command(canary_commands)
cli.add_command(feedback_keys_commands)

from goldloop.cli.traces import traces as _traces  # noqa: E402

cli.add_command(_traces)

from goldloop.cli.retention import register as _register_retention  # noqa: E402

_register_retention(cli, _traces)

from goldloop.cli.redaction import redaction as _redaction  # noqa: E402

cli.add_command(_redaction)

from goldloop.cli.workspace_export import register as _register_export  # noqa: E402

_register_export(
    cli,
    storage_options,
    friendly_errors,
    lambda data_dir, url, exists: (
        _stored(data_dir, url) if exists else _settings(data_dir=data_dir, database_url=url)
    ),
    _open_ctx,
)

from goldloop.cli.payloads import register as _register_payloads  # noqa: E402

_register_payloads(cli, storage_options, friendly_errors, _stored, _open_ctx)

from goldloop.cli.demo import demo as _demo  # noqa: E402

cli.add_command(_demo)

from goldloop.cli.reference import reference as _reference  # noqa: E402

cli.add_command(_reference)


def _register_experiment_commands() -> None:
    from goldloop.cli.experiments import compare, gate
    from goldloop.cli.experiments_remote import experiments

    cli.add_command(compare)
    cli.add_command(gate)
    cli.add_command(experiments)


_register_experiment_commands()


def main() -> None:
    from goldloop.sdk import setup as _setup

    _setup._quiet_tracing_off_notice()  # GOLDLOOP_ENDPOINT here is the command's server
    cli(prog_name="goldloop")


if __name__ == "__main__":
    main()
