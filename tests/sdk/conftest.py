"""Fixtures for the SDK tests (helpers live in sdk_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
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
