"""Helpers for the browser tests: the server handle and a screenshotting, XSS-watching tab."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"


@dataclass
class Server:
    base: str
    admin_key: str
    data_dir: Path

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"x-api-key": self.admin_key}, timeout=30)


class Pages:
    """A browser tab that records XSS signals and takes a screenshot of every page it shows."""

    def __init__(self, page: Any, server: Server) -> None:
        self.page = page
        self.server = server
        self.dialogs: list[str] = []
        self.console_errors: list[str] = []
        page.on("dialog", self._on_dialog)
        page.on(
            "console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None
        )

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def goto(self, path: str) -> Any:
        return self.page.goto(self.server.base + path)

    def shot(self, name: str, *, full_page: bool = True) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)

    def xss_fired(self) -> bool:
        return bool(self.page.evaluate("() => window.__xss === true || window.__xss === 1"))

    def sign_in(self, key: str | None = None) -> None:
        self.goto("/login")
        self.page.fill("#api_key", key or self.server.admin_key)
        self.page.click("button[type=submit]")
        self.page.wait_for_url("**/projects")
