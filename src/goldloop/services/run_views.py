"""The run read model: a stored runs row as the API returns it (see CONTRACTS.md).

Times come as integer microseconds and as ISO strings; token counts are grouped under ``usage``
(with any extra usage details the sender gave); ``light`` views leave out the big documents
(inputs, outputs, extra, events) for tables and trees.
"""

from __future__ import annotations

import functools
import gc
import threading
import time
from collections.abc import Sequence
from typing import Any

from goldloop.domain.trace_tree import Node

_INTERNAL = ("pk", "workspace_id", "created_at", "updated_at")
_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_resume = False


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


def tree_views(
    rows: Sequence[Sequence[Any]], nodes: Sequence[Node], trace_id: str, *, light: bool
) -> list[dict[str, Any]]:
    """The views of a trace's runs in tree order, each with its ``depth``, ``children`` and
    ``orphan`` flag: the same dicts as ``run_view`` gives (a test compares them), built in one
    dict display per run from the lean rows of ``store.trace_rows`` (in ``columns(light)``
    order) instead of popping and adding keys."""
    out: list[dict[str, Any]] = []
    append = out.append
    for i, depth, children, orphan in nodes:
        row = rows[i]
        (
            id_,
            parent_id,
            project_id,
            seq,
            is_root,
            name,
            kind,
            status,
            start,
            end,
            latency,
            error,
            model,
            provider,
            input_tokens,
            output_tokens,
            total_tokens,
            cost,
            session_id,
            user_id,
            tags,
            metadata,
            reference_example_id,
        ) = row[:23]
        usage = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": total_tokens,
        }
        inputs = outputs = extra = events = None
        if not light:
            inputs, outputs, extra = row[23:]
            if isinstance(extra, dict):
                extra_usage = extra.get("usage")
                if isinstance(extra_usage, dict):
                    usage = {**extra_usage, **usage}
                events = extra.get("events")
        view = {
            "project_id": project_id,
            "id": id_,
            "trace_id": trace_id,
            "parent_id": parent_id,
            "seq": seq,
            "is_root": bool(is_root),
            "name": name,
            "kind": kind,
            "status": status,
            "start_time": start,
            "end_time": end,
            "error": error,
            "inputs": inputs,
            "outputs": outputs,
            "model": model,
            "provider": provider,
            "cost": cost,
            "session_id": session_id,
            "user_id": user_id,
            "tags": [] if tags is None else tags,
            "metadata": {} if metadata is None else metadata,
            "reference_example_id": reference_example_id,
            "usage": usage,
            "start_time_iso": iso(start),
            "end_time_iso": iso(end),
            "latency_ms": None if latency is None else latency / 1000,
            "events": events if isinstance(events, list) else [],
            "extra": extra or {},
            "depth": depth,
            "children": children,
            "orphan": orphan,
        }
        if light:  # one display for both views; the light one drops the documents
            del view["inputs"], view["outputs"], view["events"], view["extra"]
        append(view)
    return out


class GCPaused:
    """Keeps the cyclic garbage collector from running while a big answer is built (a context
    manager: ``with GCPaused(): ...``).

    A 10,000-run trace is ~100,000 new dicts and lists; every 700 of them set off a collection
    that scans the young ones, and the older generations get re-scanned as they pile up (a
    quarter of the time of a trace read in the benchmark). It cannot find anything: JSON views
    hold no reference cycles, and reference counting frees them. Pauses may nest and overlap
    across threads; the collector resumes when the last one ends, if it was on when the first
    began. (A class, not a generator-based context manager: the StopIteration a generator raises
    on exit would be the first allocation after the collector resumes, and would make it scan
    the answer just built.)"""

    __slots__ = ()

    def __enter__(self) -> None:
        global _gc_pauses, _gc_resume
        with _gc_lock:
            if _gc_pauses == 0:
                _gc_resume = gc.isenabled()
                gc.disable()
            _gc_pauses += 1

    def __exit__(self, *exc: object) -> None:
        global _gc_pauses
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_resume:
                gc.enable()
