"""Helpers for the in-process dashboard tests: a cookie-keeping client that signs in."""

from __future__ import annotations

import re

import httpx

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF field in the page"
    return match.group(1)


async def sign_in(browser: httpx.AsyncClient, key: str, next_path: str = "") -> httpx.Response:
    page = await browser.get("/login")
    assert page.status_code == 200
    return await browser.post(
        "/login", data={"csrf": csrf_of(page.text), "api_key": key, "next": next_path}
    )
