"""The run read model: a stored runs row as the API returns it (see CONTRACTS.md).

Times come as integer microseconds and as ISO strings; token counts are grouped under ``usage``
(with any extra usage details the sender gave); ``light`` views leave out the big documents
(inputs, outputs, extra, events) for tables and trees.
"""

from __future__ import annotations

import functools
import time
from typing import Any

_INTERNAL = ("pk", "workspace_id", "created_at", "updated_at")


@functools.lru_cache(maxsize=8192)
def _second(sec: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))


def iso(us: int | None) -> str | None:
    """Same text as ``goldloop.domain.clock.to_iso`` (a test checks), ~3x faster: the runs of
    one trace share their seconds, so the calendar part is cached."""
    if us is None:
        return None
    sec, micro = divmod(us, 1_000_000)
    return f"{_second(sec)}.{micro:06d}+00:00" if micro else f"{_second(sec)}+00:00"


def run_view(row: dict[str, Any], *, light: bool = False) -> dict[str, Any]:
    """The API view of ``row``, built in place (the row dict is consumed: a trace of 10,000 runs
    should not copy 10,000 dicts)."""
    view = row
    for key in _INTERNAL:
        view.pop(key, None)
    latency = view.pop("latency_us", None)
    extra = None if light else view.pop("extra", None)
    usage: dict[str, Any] = {}
    if isinstance(extra, dict) and isinstance(extra.get("usage"), dict):
        usage.update(extra["usage"])
    usage["input_tokens"] = view.pop("input_tokens", None)
    usage["output_tokens"] = view.pop("output_tokens", None)
    usage["total_tokens"] = view.pop("total_tokens", None)
    view["usage"] = usage
    view["is_root"] = bool(view["is_root"])
    view["start_time_iso"] = iso(view["start_time"])
    view["end_time_iso"] = iso(view["end_time"])
    view["latency_ms"] = None if latency is None else latency / 1000
    if view["tags"] is None:
        view["tags"] = []
    if view["metadata"] is None:
        view["metadata"] = {}
    if light:
        for key in ("inputs", "outputs", "extra"):
            view.pop(key, None)
    else:
        events = extra.get("events") if isinstance(extra, dict) else None
        view["events"] = events if isinstance(events, list) else []
        view["extra"] = extra or {}
    return view
