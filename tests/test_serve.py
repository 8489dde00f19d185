"""`goldloop serve` as a real process on a real socket."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import goldloop
from goldloop._version import __version__

pytestmark = pytest.mark.slow
SRC = str(Path(goldloop.__file__).resolve().parents[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    data_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    full_env = {**os.environ, "PYTHONPATH": SRC, **(env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "goldloop",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited early:\n{proc.stdout.read() if proc.stdout else ''}"
            )
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not become ready in 30 s")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    proc, base = start_server(tmp_path / "data")
    yield proc, base, tmp_path / "data"
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_serve_on_sqlite_over_a_socket_and_stop_gracefully(
    server: tuple[subprocess.Popen[str], str, Path],
) -> None:
    proc, base, data_dir = server
    key = (data_dir / "admin-key").read_text().strip()
    with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=10) as c:
        assert c.get("/healthz").json() == {"status": "ok", "version": __version__}
        created = c.post("/api/v1/projects", json={"name": "agent-support"})
        assert created.status_code == 201
        assert c.get("/api/v1/projects").json()["items"][0]["name"] == "agent-support"
        assert c.get("/api/v1/projects", headers={"x-api-key": "nope"}).status_code == 401
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    # uvicorn finishes in-flight requests and the lifespan shutdown (which drains the writer),
    # then re-raises SIGTERM so the exit status says what stopped it.
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Application shutdown complete" in out
    assert key in out  # printed once on first start ...
    assert out.count(key) == 1
    assert (data_dir / "goldloop.db").exists()
    # gc_freeze (on by default): the start-up objects are out of the collector's full passes
    frozen = re.search(r"garbage collector: (\d+) start-up objects frozen", out)
    assert frozen is not None, out
    assert int(frozen.group(1)) > 10_000

    # ... and not again on the next start: the instance is no longer empty.
    proc2, base2 = start_server(data_dir, env={"GOLDLOOP_GC_FREEZE": "false"})
    try:
        with httpx.Client(base_url=base2, headers={"x-api-key": key}, timeout=10) as c:
            assert c.get("/api/v1/projects").json()["items"][0]["name"] == "agent-support"
    finally:
        proc2.send_signal(signal.SIGTERM)
        out2, _ = proc2.communicate(timeout=30)
    assert key not in out2
    assert "garbage collector" not in out2


def test_cli_keys_and_db_commands(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC, "GOLDLOOP_DATA_DIR": str(tmp_path / "d")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "goldloop", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    up = run("db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert "was empty" in up.stdout
    missing = run("keys", "create", "--workspace", "team-a")
    assert missing.returncode == 1
    assert "no workspace named 'team-a'" in missing.stderr
    made = run("keys", "create", "--workspace", "team-a", "--create-workspace", "--name", "ci")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("gl_")
    listed = run("keys", "list")
    assert "team-a" in listed.stdout
    assert secret not in listed.stdout
    key_id = next(line.split()[0] for line in listed.stdout.splitlines() if "team-a" in line)
    assert run("keys", "revoke", key_id).returncode == 0
    assert "revoked" in run("keys", "list").stdout
    again = run("keys", "revoke", key_id)
    assert again.returncode == 1
    bad = run("serve", "--port", "99999")
    assert bad.returncode == 2
    assert "not a TCP port" in bad.stderr
