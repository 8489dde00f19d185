"""The run read model: a stored runs row as the API returns it (see CONTRACTS.md).

Times come as integer microseconds and as ISO strings; token counts are grouped under ``usage``
(with any extra usage details the sender gave); ``light`` views leave out the big documents
(inputs, outputs, extra, events) for tables and trees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from goldloop.domain.clock import to_iso


def run_view(row: Mapping[str, Any], *, light: bool = False) -> dict[str, Any]:
    latency = row.get("latency_us")
    extra = row.get("extra") if not light else None
    extra_usage = extra.get("usage") if isinstance(extra, dict) else None
    usage: dict[str, Any] = dict(extra_usage) if isinstance(extra_usage, dict) else {}
    usage.update(
        input_tokens=row.get("input_tokens"),
        output_tokens=row.get("output_tokens"),
        total_tokens=row.get("total_tokens"),
    )
    view: dict[str, Any] = {
        "id": row["id"],
        "trace_id": row["trace_id"],
        "parent_id": row["parent_id"],
        "project_id": row["project_id"],
        "is_root": bool(row["is_root"]),
        "name": row["name"],
        "kind": row["kind"],
        "status": row["status"],
        "start_time": row["start_time"],
        "end_time": row["end_time"],
        "start_time_iso": to_iso(row["start_time"]),
        "end_time_iso": to_iso(row["end_time"]),
        "latency_ms": None if latency is None else latency / 1000,
        "error": row["error"],
        "model": row["model"],
        "provider": row["provider"],
        "usage": usage,
        "cost": row["cost"],
        "tags": row["tags"] or [],
        "metadata": row["metadata"] or {},
        "session_id": row["session_id"],
        "user_id": row["user_id"],
        "reference_example_id": row["reference_example_id"],
        "seq": row["seq"],
    }
    if not light:
        events = extra.get("events") if isinstance(extra, dict) else None
        view["inputs"] = row["inputs"]
        view["outputs"] = row["outputs"]
        view["events"] = events if isinstance(events, list) else []
        view["extra"] = extra or {}
    return view
