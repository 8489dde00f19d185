"""`goldloop demo`: start an embedded instance and watch the quality loop close."""

from __future__ import annotations

import shutil
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path

import click

from goldloop.cli.ports import PortInUse, listen_socket

HOST = "127.0.0.1"
DEFAULT_PORT = 8700


def _bind(port: int | None, explicit: bool) -> socket.socket:
    """The demo's listening socket: ``--port`` as given (0 = any free one); else GOLDLOOP_PORT's
    or 8700, and a free one when that is taken (`goldloop serve` may be holding it)."""
    if port is not None and explicit:
        try:
            return listen_socket(HOST, port)
        except PortInUse as exc:
            raise click.ClickException(
                f"{exc.strerror}; stop it, or give the demo another port: --port N "
                "(--port 0 picks a free one)"
            ) from None
    wanted = DEFAULT_PORT if port is None else port
    try:
        return listen_socket(HOST, wanted)
    except PortInUse as exc:
        sock = listen_socket(HOST, 0)
        click.echo(
            f"{exc.strerror}, so the demo listens on port {sock.getsockname()[1]} instead "
            "(--port N chooses one)."
        )
        return sock


@click.command()
@click.option(
    "--port",
    default=None,
    type=click.IntRange(0, 65535),
    envvar="GOLDLOOP_PORT",
    help="Port of the demo's server; 0 = any free port. Without --port: 8700 (or "
    "GOLDLOOP_PORT), else a free port when that one is taken, e.g. by `goldloop serve`. "
    "[env GOLDLOOP_PORT]",
)
@click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="Data directory for the demo's SQLite database (default: a new temporary directory).",
)
@click.option("--seed", default=7, show_default=True, help="Seed of the guests' requests.")
@click.option(
    "--exit", "exit_after", is_flag=True, help="Stop once the loop has closed (for tests)."
)
@click.option(
    "--timeout",
    default=180.0,
    show_default=True,
    help="Longest wait, in seconds, for any one step's background work.",
)
@click.option(
    "--llm-base-url",
    envvar="GOLDLOOP_DEMO_LLM_BASE_URL",
    default=None,
    help="OpenAI-compatible endpoint (up to /chat/completions) that words the agent's replies; "
    "its key is read from GOLDLOOP_DEMO_LLM_API_KEY. [env GOLDLOOP_DEMO_LLM_BASE_URL]",
)
@click.option(
    "--llm-model",
    envvar="GOLDLOOP_DEMO_LLM_MODEL",
    default=None,
    help="Model name for --llm-base-url. [env GOLDLOOP_DEMO_LLM_MODEL]",
)
def demo(
    port: int | None,
    data_dir: Path | None,
    seed: int,
    exit_after: bool,
    timeout: float,
    llm_base_url: str | None,
    llm_model: str | None,
) -> None:
    """Play the whole loop on an embedded server: traffic, online check, alert, correction,
    golden dataset, gate. No LLM needed (give --llm-base-url and --llm-model to have a real
    model word the agent's replies) and nothing else to install; the dashboard stays up."""
    import os

    from goldloop.demo import agent
    from goldloop.demo.embedded import DemoError, EmbeddedServer, WebhookReceiver
    from goldloop.demo.loop import Demo, DemoOptions, demo_settings

    if llm_base_url:
        if not llm_model:
            raise click.UsageError("--llm-base-url needs --llm-model")
        api_key = os.environ.get("GOLDLOOP_DEMO_LLM_API_KEY") or None
        agent.use_chat_model(agent.ChatModel(llm_base_url.rstrip("/"), llm_model, api_key))
    else:
        agent.use_chat_model(None)

    if data_dir is not None and (data_dir / "demo.json").exists():
        raise click.UsageError(f"{data_dir} already holds a demo; give a new --data-dir")
    # Bound before anything is created: a taken port leaves nothing behind.
    given = click.get_current_context().get_parameter_source("port")
    sock = _bind(port, given == click.core.ParameterSource.COMMANDLINE)
    temporary = data_dir is None
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="goldloop-demo-"))
    opts = DemoOptions(
        data_dir=data_dir, port=int(sock.getsockname()[1]), seed=seed, timeout_s=timeout
    )
    try:
        server = EmbeddedServer(demo_settings(opts), sock)
    except BaseException:
        sock.close()
        if temporary:
            shutil.rmtree(data_dir, ignore_errors=True)
        raise
    pager = WebhookReceiver()

    def say(text: str) -> None:
        click.echo(f"\n{text}")

    click.echo(
        f"Goldloop demo: embedded server with SQLite in {data_dir} (its own data and admin key, "
        f"in {data_dir / 'admin-key'}; not those of a `goldloop serve`)"
    )
    model = agent.chat_model()
    if model is not None:
        click.echo(f"The agent's replies are worded by {model.model} at {model.base_url}")
    pager.start()
    player: Demo | None = None
    closed = False
    try:
        server.start(timeout)
        click.echo(f"Server and workers up on {server.base_url}")
        player = Demo(opts, server, pager, say)
        player.play()
        closed = True
        click.echo(f"\nThe loop is closed. Outcomes: {data_dir / 'demo.json'}")
        if not exit_after:
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):  # before saying Ctrl-C stops it
                signal.signal(sig, lambda *_: stop.set())
            click.echo(f"Dashboard: {server.base_url}/  (Ctrl-C to stop)")
            stop.wait()
            click.echo("\nstopping")
    except DemoError as exc:
        click.echo(f"\ndemo failed: {exc}", err=True)
        sys.exit(1)
    finally:
        import goldloop

        goldloop.shutdown()
        if player is not None:
            player.close()
        server.stop()
        pager.stop()
        if temporary and not closed:  # nothing to look at, and it holds an admin key
            shutil.rmtree(data_dir, ignore_errors=True)
