"""Putting the SDK's process-wide state back between tests that configure it."""

from __future__ import annotations

import goldloop
from goldloop.sdk import setup as _setup
from goldloop.sdk import tracing as _tracing


def reset_sdk(timeout: float = 5.0) -> None:
    """Back to the import-time state: off, nothing configured, env not read yet."""
    goldloop.shutdown(timeout)
    with _setup._lock:
        _setup._config = None
        _setup._exporter = None
        _setup._told_tracing_off = False
    _tracing._set_sink(None)
    _tracing._ENABLED = True
    _tracing._capture_defaults(True, True)
