"""The exporter's encoding: redaction hooks on a wire item, and a batch of items as JSON.

Runs in the exporter's worker thread (it imports orjson), never in a traced call.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from goldloop.sdk.config import SDKConfig
from goldloop.sdk.run import snapshot

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


class Counting(Protocol):
    """What the encoder tells the exporter: counters and a (rate-limited) error note."""

    config: SDKConfig

    def count(self, counter: str, n: int = 1) -> None: ...
    def _note_error(self, message: str) -> None: ...


def _default(value: Any) -> Any:
    return repr(value)


def sanitize(value: Any) -> Any:
    """Make a value orjson can encode: big ints become strings."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, dict):
        return {str(k): sanitize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [sanitize(v) for v in value]
    return repr(value)


def encode_items(host: Counting, items: list[dict[str, Any]]) -> bytes | None:
    """``items`` as one JSON array; a run that cannot be encoded is counted and left out."""
    try:
        return orjson.dumps(items, default=_default, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        pass
    blobs = [blob for blob in (_encode_one(host, item) for item in items) if blob is not None]
    return b"[" + b",".join(blobs) + b"]" if blobs else None


def _encode_one(host: Counting, item: dict[str, Any]) -> bytes | None:
    try:
        return orjson.dumps(item, default=_default, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        try:
            return orjson.dumps(sanitize(item), option=_OPTIONS)
        except (TypeError, orjson.JSONEncodeError) as exc:
            host.count("encode_errors")
            host._note_error(f"could not encode run {item.get('id')}: {exc}")
            return None


def apply_hooks(host: Counting, item: dict[str, Any]) -> dict[str, Any] | None:
    """``redact_inputs``/``redact_outputs`` then ``process_run``; fails closed."""
    cfg = host.config
    for key, hook in (("inputs", cfg.redact_inputs), ("outputs", cfg.redact_outputs)):
        if hook is not None and item.get(key) is not None:
            try:
                item[key] = hook(snapshot(item[key]))
            except Exception as exc:  # fail closed: never send what could not be redacted
                host.count("hook_errors")
                host._note_error(f"redact_{key} failed: {type(exc).__name__}")
                item[key] = {"redaction_failed": True}
    if cfg.process_run is not None:
        try:
            processed = cfg.process_run(snapshot(item))
        except Exception as exc:
            host.count("hook_errors")
            host._note_error(f"process_run failed: {type(exc).__name__}; run dropped")
            return None
        if processed is None:
            host.count("filtered")
        return processed
    return item
