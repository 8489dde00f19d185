"""Browser-test harness: a real `goldloop serve` process on 127.0.0.1 and Debian's Chromium
driven by Playwright.

Playwright never downloads a browser here: it launches /usr/bin/chromium. Without it the tests
skip locally and fail under CI=true. Every page a test visits is saved as a screenshot under
test-artifacts/screenshots/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dashboard_harness import Pages, Server

import goldloop

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]
IN_CI = os.environ.get("CI", "").lower() == "true"
SRC = str(Path(goldloop.__file__).resolve().parents[1])

pytestmark = pytest.mark.slow


def _need_browser() -> None:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(CHROMIUM)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package")
    if missing:
        reason = f"browser tests need {' and '.join(missing)}"
        if IN_CI:
            pytest.fail(f"{reason} (required under CI=true)")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `goldloop serve` (SQLite) for the whole browser session."""
    _need_browser()
    data_dir = tmp_path_factory.mktemp("browser") / "data"
    port = _free_port()
    log_path = data_dir.parent / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "goldloop", "serve", "--port", str(port)),
                *("--data-dir", str(data_dir), "--log-level", "warning"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": SRC},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited early:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server did not become ready in 60 s")
            time.sleep(0.1)
        key = (data_dir / "admin-key").read_text().strip()
        yield Server(base=base, admin_key=key, data_dir=data_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def chromium(server: Server) -> Iterator[Any]:
    # Module scope, not session: sync Playwright keeps an event loop running in this thread
    # until it stops, which would break the async tests collected after the browser tests.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def tab(chromium: Any, server: Server) -> Iterator[Pages]:
    context = chromium.new_context(viewport={"width": 1360, "height": 860})
    page = context.new_page()
    pages = Pages(page, server)
    yield pages
    context.close()
