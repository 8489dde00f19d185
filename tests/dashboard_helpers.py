"""Helpers for the in-process dashboard tests: a cookie-keeping client that signs in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from goldloop.services import auth

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


@asynccontextmanager
async def other_workspace_browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A dashboard client signed in with a key of a second workspace, ``other``."""
    ctx = app.state.ctx
    key = auth.create_key(ctx, auth.create_workspace(ctx, "other").id, "k")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://goldloop.test") as other:
        assert (await sign_in(other, key.secret)).status_code == 303
        yield other
