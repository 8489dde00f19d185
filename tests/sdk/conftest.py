"""Fixtures for the SDK tests (helpers live in sdk_support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fake_openai import FakeOpenAI
from sdk_support import RecordingServer, reset_sdk


@pytest.fixture
def fresh_sdk() -> Iterator[None]:
    """Every SDK test starts and ends with the SDK unconfigured."""
    reset_sdk()
    yield
    reset_sdk()


@pytest.fixture
def recorder(fresh_sdk: None) -> Iterator[RecordingServer]:
    srv = RecordingServer()
    yield srv
    reset_sdk()
    srv.close()


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


@pytest.fixture
def clients() -> Iterator[list[Any]]:
    """Clients made in a test, closed at its end (an unclosed one warns later)."""
    made: list[Any] = []
    yield made
    for client in made:
        if not client.__class__.__name__.startswith("Async"):
            client.close()


@pytest.fixture
async def aclients() -> AsyncIterator[list[Any]]:
    made: list[Any] = []
    yield made
    for client in made:
        await client.close()
