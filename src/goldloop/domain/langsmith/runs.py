"""LangSmith run objects -> Goldloop native run items (pure; see docs/langsmith.md).

The LangSmith SDK sends a run twice: a ``post`` when it starts and a ``patch`` when it ends, in
any order, possibly merged, duplicated or with every unset key as an explicit ``null``. A native
run item (CONTRACTS.md) is an upsert where an absent or ``null`` field means "unchanged", so the
conversion below only ever emits keys that carry information.
"""

from __future__ import annotations

import ast
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from goldloop.domain.clock import from_iso
from goldloop.domain.safe_values import MAX_TIME_US

# LangSmith's run types (its API answers 422 to any other); Goldloop's own API and OTLP accept
# more kinds (agent, reranker, ...), but a LangSmith client may only send these.
RUN_TYPES = ("llm", "chain", "tool", "retriever", "embedding", "prompt", "parser")

# Metadata keys LangSmith uses for a conversation thread (first one present wins).
THREAD_KEYS = ("session_id", "thread_id", "conversation_id")

_REPR = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)\((?P<args>.*)\)$", re.DOTALL)
_TRACEBACK = "Traceback (most recent call last):"
_SEGMENT = re.compile(r"^(?P<ts>\d{8}T\d{12}Z)(?P<id>.+)$")


class WireError(ValueError):
    """A LangSmith payload that cannot be used; the message names the field."""


class RunTypeError(WireError):
    """A ``run_type`` outside LangSmith's set (LangSmith answers 422; so does Goldloop)."""


def to_micros(value: Any, field: str) -> int | None:
    """An ISO-8601 string (naive = UTC, space allowed), epoch ms/µs number, or None -> µs."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise WireError(f"{field}: expected a time, got a boolean")
    if isinstance(value, int | float):
        # LangSmith never sends numbers, but older clients sent epoch milliseconds.
        return int(value * 1000) if value < 10**14 else int(value)
    if isinstance(value, str):
        try:
            return from_iso(value)
        except ValueError:
            raise WireError(f"{field}: {value!r} is not an ISO-8601 time") from None
    raise WireError(f"{field}: expected an ISO-8601 string")


def parse_error(text: str) -> dict[str, Any]:
    """``repr(exc)``, blank line, traceback (as the SDK sends it) -> type, message, stacktrace."""
    head, sep, tail = text.partition(_TRACEBACK)
    stacktrace = (sep + tail).strip() if sep else None
    head = head.strip()
    match = _REPR.match(head)
    if match is None:
        return {"type": None, "message": head or text, "stacktrace": stacktrace}
    args = match.group("args")
    try:
        value = ast.literal_eval(args) if args else ""
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        message = args
    else:
        message = ", ".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
    return {"type": match.group("type"), "message": message, "stacktrace": stacktrace}


def dotted_segment(start_us: int, run_id: str) -> str:
    if not 0 <= start_us <= MAX_TIME_US:  # stored before ingest checked the range
        start_us = min(max(start_us, 0), MAX_TIME_US)
    moment = datetime.fromtimestamp(start_us // 1_000_000, tz=UTC).replace(
        microsecond=start_us % 1_000_000
    )
    return moment.strftime("%Y%m%dT%H%M%S%fZ") + run_id


def dotted_ids(dotted_order: str) -> list[str]:
    """The run ids of a dotted order, root first; an unparsable order gives []."""
    ids = []
    for segment in dotted_order.split("."):
        match = _SEGMENT.match(segment)
        if match is None:
            return []
        ids.append(match.group("id"))
    return ids


def _usage_metadata(meta: Mapping[str, Any] | None, outputs: Any) -> Mapping[str, Any] | None:
    raw: Any = (meta or {}).get("usage_metadata")
    if not isinstance(raw, Mapping) and isinstance(outputs, Mapping):
        raw = outputs.get("usage_metadata")
    return raw if isinstance(raw, Mapping) else None


def _usage(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    usage: dict[str, Any] = {}
    for ours, theirs in (
        ("input_tokens", ("input_tokens", "prompt_tokens")),
        ("output_tokens", ("output_tokens", "completion_tokens")),
        ("total_tokens", ("total_tokens",)),
    ):
        for key in theirs:
            if isinstance(raw.get(key), int) and not isinstance(raw.get(key), bool):
                usage[ours] = raw[key]
                break
    details_in = raw.get("input_token_details")
    if isinstance(details_in, Mapping):
        if isinstance(details_in.get("cache_read"), int):
            usage["cache_read_tokens"] = details_in["cache_read"]
        if isinstance(details_in.get("cache_creation"), int):
            usage["cache_write_tokens"] = details_in["cache_creation"]
        usage["input_token_details"] = dict(details_in)  # kept whole, read back as given
    details_out = raw.get("output_token_details")
    if isinstance(details_out, Mapping):
        if isinstance(details_out.get("reasoning"), int):
            usage["reasoning_tokens"] = details_out["reasoning"]
        usage["output_token_details"] = dict(details_out)
    return usage or None


COST_FIELDS = (
    ("input", "input_cost"),
    ("output", "output_cost"),
    ("total", "total_cost"),
    ("input_details", "input_cost_details"),
    ("output_details", "output_cost_details"),
)


def _cost(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """``input_cost``, ``output_cost``, ``total_cost`` and the ``*_cost_details`` maps of a
    run's ``usage_metadata`` -> a native ``cost`` object (the caller's figures: Goldloop's price
    estimate then fills in only the parts the caller left out)."""
    cost: dict[str, Any] = {}
    for ours, theirs in COST_FIELDS:
        if raw.get(theirs) is not None:
            cost[ours] = raw[theirs]  # validated (numbers in range) by the native item parser
    return cost or None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def convert_run(run: Mapping[str, Any], *, is_post: bool) -> dict[str, Any]:
    """One LangSmith run (a post or a patch) -> one native run item (only informative keys).

    ``trace_id`` may be missing from the result (a manual ``update_run`` sends it as null):
    the caller then fills it from the stored run. The LangSmith project travels in the result
    as ``ls_project_name`` / ``ls_project_id`` (also for the caller to resolve and drop)."""
    if not isinstance(run, Mapping):
        raise WireError("a run must be a JSON object")
    run_id = run.get("id")
    if not isinstance(run_id, str) or not run_id or len(run_id) > 64:
        raise WireError("id: expected a run id string of 1-64 characters")
    item: dict[str, Any] = {"id": run_id}
    dotted = run.get("dotted_order")
    chain = dotted_ids(dotted) if isinstance(dotted, str) else []
    trace_id = _str_or_none(run.get("trace_id")) or (chain[0] if chain else None)
    if trace_id:
        item["trace_id"] = trace_id
    parent = _str_or_none(run.get("parent_run_id"))
    if parent is None and len(chain) > 1:
        parent = chain[-2]
    if parent:
        item["parent_id"] = parent
    if isinstance(run.get("name"), str):
        item["name"] = run["name"]
    run_type = run.get("run_type")
    if run_type is not None:
        if run_type not in RUN_TYPES:
            raise RunTypeError(
                f"run_type: {run_type!r} is not a LangSmith run type; expected one of "
                f"{', '.join(RUN_TYPES)}"
            )
        item["kind"] = run_type
    for field in ("start_time", "end_time"):
        micros = to_micros(run.get(field), field)
        if micros is not None:
            item[field] = micros
    if run.get("inputs") is not None:
        item["inputs"] = run["inputs"]
    outputs = run.get("outputs")
    # A bare post carries ``outputs: {}``: no information, and it must never overwrite the
    # outputs of a patch that arrived first.
    if outputs is not None and not (is_post and outputs == {} and "end_time" not in item):
        item["outputs"] = outputs
    error = run.get("error")
    if isinstance(error, str) and error:
        item["error"] = parse_error(error)
        item["status"] = "error"
    elif isinstance(error, Mapping):
        item["error"] = dict(error)
        item["status"] = "error"
    if isinstance(run.get("tags"), list) and (run["tags"] or not is_post):
        item["tags"] = [str(t) for t in run["tags"]]
    events = run.get("events")
    if isinstance(events, list) and events:
        item["events"] = events
    if run.get("reference_example_id") is not None:
        item["reference_example_id"] = str(run["reference_example_id"])
    extra = run.get("extra")
    meta = extra.get("metadata") if isinstance(extra, Mapping) else None
    if isinstance(meta, Mapping):
        item["metadata"] = dict(meta)
        for key in THREAD_KEYS:
            if meta.get(key) is not None:
                item["session_id"] = str(meta[key])[:200]
                break
        if meta.get("user_id") is not None:
            item["user_id"] = str(meta["user_id"])[:200]
        if isinstance(meta.get("ls_model_name"), str):
            item["model"] = meta["ls_model_name"]
        if isinstance(meta.get("ls_provider"), str):
            item["provider"] = meta["ls_provider"]
    usage_metadata = _usage_metadata(meta if isinstance(meta, Mapping) else None, outputs)
    if usage_metadata is not None:
        usage = _usage(usage_metadata)
        if usage:
            item["usage"] = usage
        cost = _cost(usage_metadata)
        if cost:
            item["cost"] = cost
    langsmith: dict[str, Any] = {}
    if isinstance(dotted, str) and dotted:
        langsmith["dotted_order"] = dotted
    if isinstance(extra, Mapping):
        rest = {k: v for k, v in extra.items() if k != "metadata" and v is not None}
        if rest:
            langsmith["extra"] = rest
    for key in ("serialized", "manifest_id"):
        if run.get(key) is not None:
            langsmith[key] = run[key]
    if langsmith:
        item["extra"] = {"langsmith": langsmith}
    if run.get("session_name") is not None:
        item["ls_project_name"] = str(run["session_name"])
    if run.get("session_id") is not None:
        item["ls_project_id"] = str(run["session_id"])
    return item


def derive_lineage(
    item: dict[str, Any], parent_trace_id: str | None, parent_dotted: str | None
) -> None:
    """Fill ``trace_id`` (and the dotted order) of a run created without them (``POST /runs``
    from a manual ``create_run``): a root is its own trace; a child joins its parent's."""
    if "trace_id" not in item:
        if item.get("parent_id"):
            item["trace_id"] = parent_trace_id or item["parent_id"]
        else:
            item["trace_id"] = item["id"]
    langsmith = item.setdefault("extra", {}).setdefault("langsmith", {})
    if "dotted_order" not in langsmith and item.get("start_time") is not None:
        own = dotted_segment(item["start_time"], item["id"])
        langsmith["dotted_order"] = f"{parent_dotted}.{own}" if parent_dotted else own


def feedback_stats(
    rows: Iterable[tuple[str, str, float | None, Any]],
) -> dict[str, dict[str, dict[str, Any]]]:
    """LangSmith's ``feedback_stats`` of each run, from ``(run id, key, score, value)`` rows:
    per key the number of feedback ``n``, the mean ``avg`` and sample ``stdev`` of the numeric
    scores (None without any, or with fewer than two for ``stdev``), and ``values``, the count of
    each categorical value (string values only)."""
    grouped: dict[str, dict[str, list[tuple[float | None, Any]]]] = {}
    for run_id, key, score, value in rows:
        grouped.setdefault(run_id, {}).setdefault(key, []).append((score, value))
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for run_id, keys in grouped.items():
        out[run_id] = {}
        for key, points in keys.items():
            scores = [float(s) for s, _ in points if s is not None]
            values = Counter(v for _, v in points if isinstance(v, str))
            out[run_id][key] = {
                "n": len(points),
                "avg": statistics.fmean(scores) if scores else None,
                "stdev": statistics.stdev(scores) if len(scores) > 1 else None,
                "values": dict(sorted(values.items())),
            }
    return out
