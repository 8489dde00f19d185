"""W3C Trace Context (``traceparent``/``tracestate``) so one trace spans services.

Outgoing: ``goldloop.inject_headers(headers)`` adds ``traceparent: 00-<trace_id>-<span>-01``
for the current run. Goldloop trace ids are 32 hex digits and pass through unchanged; a W3C
parent-id has only 16 hex digits, so the full run id also travels in
``tracestate: goldloop=<run id>``. Incoming: ``with goldloop.continue_trace(request.headers):``
makes the next root run join that trace, under that parent. When the caller was not Goldloop
(e.g. an OpenTelemetry-instrumented service), the parent is its 16-hex span id, which is the id
Goldloop's OTLP receiver stores for that span, so the tree still joins up.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Mapping, MutableMapping
from contextvars import Token
from typing import Any

from goldloop.sdk.tracing import (
    _SCOPE,
    Scope,
    _current_scope,
    _enter_remote_parent,
    get_current_run,
)

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_STATE_KEY = "goldloop"


def _span_part(run_id: str) -> str:
    hex_id = run_id.replace("-", "").lower()
    if re.fullmatch(r"[0-9a-f]{16,}", hex_id):
        return hex_id[:16]
    return hashlib.blake2b(run_id.encode(), digest_size=8).hexdigest()


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        for key, val in headers.items():
            if isinstance(key, str) and key.lower() == name:
                value = val
                break
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value if isinstance(value, str) else None


def inject_headers(headers: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Add ``traceparent`` (and ``tracestate``) for the current run to ``headers`` and return it.

    ``httpx.get(url, headers=goldloop.inject_headers())`` or ``inject_headers(request.headers)``.
    Without a current run (or with tracing off) the headers are returned unchanged.
    """
    out: MutableMapping[str, str] = {} if headers is None else headers
    run = get_current_run()
    if run is not None:
        trace_id, parent = run.trace_id, run.id
    else:
        scope = _current_scope()
        if scope is None or not scope.remote_trace_id or not scope.remote_parent_id:
            return out
        trace_id, parent = scope.remote_trace_id, scope.remote_parent_id
    if not _HEX32.match(trace_id):
        return out
    out["traceparent"] = f"00-{trace_id}-{_span_part(parent)}-01"
    entry = f"{_STATE_KEY}={parent}"
    old = _header(out, "tracestate")
    others = [p.strip() for p in (old or "").split(",") if p.strip()]
    others = [p for p in others if not p.startswith(_STATE_KEY + "=")]
    out["tracestate"] = ",".join([entry, *others[:31]])
    return out


def parse_traceparent(headers: Mapping[str, Any]) -> tuple[str, str] | None:
    """(trace_id, parent run id) from W3C headers, or None when absent or malformed."""
    raw = _header(headers, "traceparent")
    if not raw:
        return None
    match = _TRACEPARENT.match(raw.strip().lower())
    if match is None:
        return None
    version, trace_id, span_id, _flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    parent = span_id
    state = _header(headers, "tracestate") or ""
    for part in state.split(","):
        key, _, value = part.strip().partition("=")
        if key == _STATE_KEY and value and _span_part(value) == span_id and len(value) <= 64:
            parent = value
            break
    return trace_id, parent


class continue_trace:
    """Runs started in this block join the caller's trace (from ``traceparent``/``tracestate``).

    Headers without a valid ``traceparent`` change nothing.
    """

    __slots__ = ("_headers", "_token")

    def __init__(self, headers: Mapping[str, Any]) -> None:
        self._headers = headers
        self._token: Token[Scope | None] | None = None

    def __enter__(self) -> None:
        try:
            parsed = parse_traceparent(self._headers)
        except Exception:
            parsed = None
        if parsed is not None:
            self._token = _enter_remote_parent(*parsed)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            with contextlib.suppress(ValueError):
                _SCOPE.reset(self._token)
            self._token = None
