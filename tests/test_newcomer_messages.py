"""Issue 26: the walls a newcomer hit in the first hour, each now a message that says what
happened and what to do. One test (or more) per numbered item; the README and docs run in
order by tests/test_first_hour.py."""

from __future__ import annotations

import io
import logging
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import click
import httpx
import langsmith
import pytest
from click.testing import CliRunner
from tests.sdk.fake_openai import FakeOpenAI
from tests.sdk.sdk_support import RecordingServer

from fake_llm import FakeLLM
from goldloop.cli.main import cli
from goldloop.cli.ports import port_holder
from goldloop.settings import Settings, load_settings
from langsmith_live import _clear_sdk_caches, live_server
from live_api import LiveApi, live_api
from receiver import receiver

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _goldloop(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GOLDLOOP_")}
    return subprocess.run(
        [sys.executable, "-m", "goldloop", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**clean, "PYTHONPATH": SRC, **env},
        timeout=300,
        check=False,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveApi]:
    settings = load_settings(
        {"data_dir": tmp_path / "server" / ".goldloop", "workers_in_process": False}, environ={}
    )
    with live_api(settings) as api:
        yield api


# -- 1. the demo beside `goldloop serve` --------------------------------------------------------


@pytest.mark.slow
def test_demo_on_a_taken_port_names_the_holder_and_leaves_nothing(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert port_holder(port) is not None
        assert f"(pid {os.getpid()})" in (port_holder(port) or "")

        # --port given: an error naming the process and how to choose another port.
        given = _goldloop("demo", "--port", str(port), cwd=tmp_path, env={"TMPDIR": str(tmp)})
        assert given.returncode == 1, given.stdout + given.stderr
        assert f"port {port} on 127.0.0.1 is in use by " in given.stderr
        assert f"(pid {os.getpid()})" in given.stderr
        assert "--port N (--port 0 picks a free one)" in given.stderr
        assert list(tmp.iterdir()) == []

        # The default (here GOLDLOOP_PORT, as `goldloop serve` uses) taken: another port, said
        # so. The start then fails (a timeout no server meets), and the temporary directory
        # with its admin key goes with it.
        fallback = _goldloop(
            "demo",
            "--timeout",
            "0",
            cwd=tmp_path,
            env={"TMPDIR": str(tmp), "GOLDLOOP_PORT": str(port)},
        )
        assert fallback.returncode == 1, fallback.stdout + fallback.stderr
        assert f"port {port} on 127.0.0.1 is in use by " in fallback.stdout
        assert "so the demo listens on port " in fallback.stdout
        assert "demo failed: the server did not start within 0 s" in fallback.stderr
        assert list(tmp.iterdir()) == []


# -- 3 and 5 of the SDK: tests/sdk/test_sdk_exporter.py -----------------------------------------

# -- 4. commands that read the database never create one ----------------------------------------


@pytest.mark.parametrize(
    "args",
    [("keys", "list"), ("keys", "create"), ("keys", "revoke", "k1"), ("db", "current")],
)
def test_reading_commands_never_create_a_database(
    args: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOLDLOOP_DATA_DIR", raising=False)
    monkeypatch.delenv("GOLDLOOP_DATABASE_URL", raising=False)
    done = CliRunner().invoke(cli, list(args))
    assert done.exit_code == 1, done.output
    assert (
        f"no Goldloop database in {tmp_path.resolve() / '.goldloop'} (the data directory, from "
        "the default, ./.goldloop in the current folder)" in done.output
    )
    assert "--data-dir DIR or GOLDLOOP_DATA_DIR=DIR" in done.output
    assert not (tmp_path / ".goldloop").exists()

    monkeypatch.setenv("GOLDLOOP_DATA_DIR", str(tmp_path / "elsewhere"))
    done = CliRunner().invoke(cli, list(args))
    assert "(the data directory, from GOLDLOOP_DATA_DIR)" in done.output
    done = CliRunner().invoke(cli, [*args, "--data-dir", str(tmp_path / "there")])
    assert "(the data directory, from --data-dir)" in done.output
    assert not (tmp_path / "elsewhere").exists()
    assert not (tmp_path / "there").exists()


# -- 5 and 6. which server, which key ----------------------------------------------------------


def test_unreachable_server_names_the_url_and_what_chose_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOLDLOOP_ENDPOINT", raising=False)
    url = f"http://127.0.0.1:{_closed_port()}"
    for argv, env, source in (
        (["datasets", "list", "--endpoint", url], {}, "--endpoint"),
        (["rules", "list"], {"GOLDLOOP_ENDPOINT": url}, "GOLDLOOP_ENDPOINT"),
        (["traces", "export", "--project", "p"], {"GOLDLOOP_ENDPOINT": url}, "GOLDLOOP_ENDPOINT"),
    ):
        done = CliRunner().invoke(cli, [*argv, "--api-key", "gl_x"], env=env)
        assert done.exit_code == 1, done.output
        assert f"cannot reach the server at {url} (from {source})" in done.output
        assert "--endpoint URL or GOLDLOOP_ENDPOINT=URL" in done.output


def test_missing_key_names_the_option_and_the_variable(
    server: LiveApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GOLDLOOP_API_KEY", raising=False)
    for argv in (
        ["datasets", "list"],
        ["experiments", "list"],
        ["traces", "export", "--project", "p"],
    ):
        done = CliRunner().invoke(cli, [*argv, "--endpoint", server.endpoint])
        assert done.exit_code != 0
        assert "no API key: give --api-key KEY or set GOLDLOOP_API_KEY=KEY" in done.output
        assert "no key file at .goldloop/admin-key" in done.output


def test_every_remote_command_reads_the_local_key_file(
    server: LiveApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key file `goldloop serve` writes in its folder, as the traces commands read it."""
    monkeypatch.chdir(tmp_path / "server")  # where the server's .goldloop is
    monkeypatch.delenv("GOLDLOOP_API_KEY", raising=False)
    monkeypatch.setenv("GOLDLOOP_ENDPOINT", server.endpoint)
    for argv in (
        ["datasets", "list"],
        ["rules", "list"],
        ["alerts", "list"],
        ["experiments", "list"],
    ):
        done = CliRunner().invoke(cli, argv)
        assert done.exit_code == 0, done.output

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "admin-key").write_text("gl_not_this_server\n")
    done = CliRunner().invoke(cli, ["datasets", "list", "--key-file", "../other/admin-key"])
    assert done.exit_code == 1
    assert "unknown or revoked API key: the key came from the key file ../other/admin-key" in (
        done.output
    )
    assert "--api-key KEY or GOLDLOOP_API_KEY=KEY" in done.output


# -- 7. the LangSmith SDK without /langsmith -----------------------------------------------------


@pytest.mark.slow
def test_langsmith_sdk_at_the_root_logs_the_endpoint_to_set(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    if settings.database_url:
        pytest.skip("about the HTTP layer: SQLite is enough")
    with live_server(settings) as live:
        for name in ("LANGCHAIN_TRACING_V2", "LANGCHAIN_ENDPOINT", "LANGCHAIN_API_KEY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("LANGSMITH_TRACING", "true")
        _clear_sdk_caches()
        expected = f"set LANGSMITH_ENDPOINT={live.base}/langsmith"
        try:
            for wrong in (live.base, live.base + "/api/v1"):  # the two mistakes people make
                caplog.clear()
                client = langsmith.Client(api_url=wrong, api_key=live.key)

                @langsmith.traceable(client=client, project_name="lost")
                def answer(q: str) -> str:
                    return q

                with caplog.at_level(logging.WARNING, logger="langsmith"):
                    answer("hi")
                    client.flush()
                    client.close()
                logged = [r.getMessage() for r in caplog.records if r.name.startswith("langsmith")]
                assert any(expected in m for m in logged), logged
        finally:
            _clear_sdk_caches()
        # The same request without the SDK's marks: Goldloop's own 404 message.
        plain = httpx.get(f"{live.base}/nothing-here", timeout=60)
        assert plain.status_code == 404
        assert "the API lives under /api/v1" in plain.json()["error"]["message"]
        # and the SDK's paths under /langsmith still work
        assert httpx.get(f"{live.endpoint}/info", timeout=60).status_code == 200
        sdk = {"user-agent": "langsmith-py/0.15.1-httpx", "x-api-key": live.key}
        posted = httpx.post(f"{live.base}/runs/batch", headers=sdk, json={"post": []}, timeout=60)
        assert posted.status_code == 404
        assert expected in posted.json()["error"]["message"]


# -- 9. command lists never cut a sentence off ----------------------------------------------


def _commands(group: click.Group, path: str) -> Iterator[tuple[str, click.Command]]:
    for name, cmd in group.commands.items():
        yield f"{path} {name}", cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{path} {name}")


def test_command_lists_show_whole_sentences() -> None:
    groups = [("goldloop", cli)] + [
        (p, c) for p, c in _commands(cli, "goldloop") if isinstance(c, click.Group)
    ]
    for path, _ in groups:
        words = path.split()[1:]
        shown = CliRunner().invoke(cli, [*words, "--help"], terminal_width=80).output
        listing = shown.split("Commands:", 1)[1]
        assert "..." not in listing, f"{path} --help cuts a sentence off:\n{listing}"
    for path, cmd in _commands(cli, "goldloop"):
        short = " ".join(cmd.get_short_help_str(10_000).split())
        assert short.endswith((".", ")")), f"{path}: {short!r} is not a whole sentence"
        assert not short.endswith(("e.g.", "i.e.")), f"{path}: {short!r} stops at an abbreviation"
    tag = CliRunner().invoke(cli, ["experiments", "--help"], terminal_width=80).output
    assert "Tag EXPERIMENT with TAG, such as `main`; the tag leaves the" in tag


# -- 10. the first start's banner -----------------------------------------------------------------


def test_first_start_banner_says_one_thing(tmp_path: Path) -> None:
    from goldloop.http.app import announce_bootstrap_key

    out = io.StringIO()
    with redirect_stdout(out):
        announce_bootstrap_key("gl_secret", ".goldloop/admin-key")
    assert out.getvalue() == (
        "\nGoldloop: created the default workspace and its admin API key, saved in "
        ".goldloop/admin-key (mode 0600); this is the only time it is printed:\n"
        "    gl_secret\n\n"
    )


# -- 11. helper servers do not print a client's expected disconnect ------------------------------


@pytest.mark.parametrize("which", ["receiver", "fake_llm", "fake_openai", "recording"])
def test_helper_servers_stay_quiet_when_a_client_hangs_up(which: str) -> None:
    def servers() -> Iterator[object]:
        if which == "receiver":
            with receiver() as r:
                yield r.server
        elif which == "fake_llm":
            llm = FakeLLM(lambda body: (200, {}, {}))
            try:
                yield llm.server
            finally:
                llm.stop()
        elif which == "fake_openai":
            fake = FakeOpenAI()
            try:
                yield fake._server
            finally:
                fake.close()
        else:
            rec = RecordingServer()
            try:
                yield rec._server
            finally:
                rec.close()

    for srv in servers():
        err = io.StringIO()
        with redirect_stderr(err):
            for exc in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")):
                try:
                    raise exc
                except OSError:
                    srv.handle_error(None, ("127.0.0.1", 1))  # type: ignore[attr-defined]
        assert err.getvalue() == ""
        with redirect_stderr(err):  # anything else is still printed
            try:
                raise ValueError(f"a real bug {uuid.uuid4()}")
            except ValueError:
                srv.handle_error(None, ("127.0.0.1", 1))  # type: ignore[attr-defined]
        assert "a real bug" in err.getvalue()
