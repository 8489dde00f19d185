"""`goldloop demo`: start an embedded instance and watch the quality loop close."""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from pathlib import Path

import click


@click.command()
@click.option("--port", default=8700, show_default=True, help="Port (0 = any free port).")
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
    port: int,
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

    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="goldloop-demo-"))
    if (data_dir / "demo.json").exists():
        raise click.UsageError(f"{data_dir} already holds a demo; give a new --data-dir")
    opts = DemoOptions(data_dir=data_dir, port=port, seed=seed, timeout_s=timeout)
    server = EmbeddedServer(demo_settings(opts))
    pager = WebhookReceiver()

    def say(text: str) -> None:
        click.echo(f"\n{text}")

    click.echo(f"Goldloop demo: embedded server with SQLite in {data_dir}")
    model = agent.chat_model()
    if model is not None:
        click.echo(f"The agent's replies are worded by {model.model} at {model.base_url}")
    pager.start()
    player: Demo | None = None
    try:
        server.start(timeout)
        click.echo(f"Server and workers up on {server.base_url}")
        player = Demo(opts, server, pager, say)
        player.play()
        click.echo(f"\nThe loop is closed. Outcomes: {data_dir / 'demo.json'}")
        if not exit_after:
            click.echo(f"Dashboard: {server.base_url}/  (Ctrl-C to stop)")
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
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
