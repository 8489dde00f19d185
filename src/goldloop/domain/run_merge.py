"""Merging a ``RunPatch`` into the stored run: the rules that make ingestion order-independent.

- absent/null = unchanged: a patch only ever sets the fields it carries, so an end that arrived
  before its start keeps its ``end_time``/``outputs`` when the start lands later;
- ``status`` is the highest of what was said and what is derived (error > success > pending;
  derived: error if ``error`` is set, success if ``end_time`` is set, else pending), so any order
  of start/end/duplicates gives the same answer;
- ``tags`` are a union, ``metadata`` and ``extra`` are merged key by key;
- ``is_root`` follows ``parent_id``; ``latency_us`` is set once both times are known;
- ``total_tokens`` defaults to input + output; ``cost`` is computed from the price table unless
  the sender gave one (the estimate fills in only the parts a sender left out);
- ``inputs``/``outputs`` larger than the per-run payload limit are kept truncated, with a marker.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from goldloop.domain.prices import PriceTable
from goldloop.domain.run_items import RunPatch

STATUS_RANK = {"pending": 0, "success": 1, "error": 2}
PAYLOAD_FIELDS = ("inputs", "outputs")
TRUNCATED_KEY = "_goldloop_truncated"

# Columns a merge may write, besides the keys (workspace_id, id) and the bookkeeping ones.
VALUE_COLUMNS = (
    "project_id",
    "trace_id",
    "parent_id",
    "is_root",
    "name",
    "kind",
    "status",
    "start_time",
    "end_time",
    "latency_us",
    "error",
    "inputs",
    "outputs",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cost",
    "session_id",
    "user_id",
    "tags",
    "metadata",
    "extra",
    "reference_example_id",
    "created_at",
    "updated_at",
)


def truncate_payloads(patch: RunPatch, limit: int) -> None:
    """Replace an inputs/outputs value whose JSON is over ``limit`` bytes by a marked preview."""
    for name in PAYLOAD_FIELDS:
        value = patch.fields.get(name)
        if value is None:
            continue
        encoded = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        if len(encoded) <= limit:
            continue
        preview = encoded[:limit].decode("utf-8", errors="ignore")
        patch.fields[name] = {
            TRUNCATED_KEY: {
                "original_bytes": len(encoded),
                "kept_bytes": len(preview.encode()),
                "reason": "larger than the per-run payload limit (max_run_payload_bytes); "
                "'preview' holds the start of the original JSON text",
            },
            "preview": preview,
        }
        truncated = patch.extra.setdefault("truncated", {})
        truncated[name] = len(encoded)


def derived_status(row: Mapping[str, Any]) -> str:
    if row.get("error") is not None:
        return "error"
    if row.get("end_time") is not None:
        return "success"
    return "pending"


def _merge_extra(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(old or {})
    for key, value in new.items():
        before = merged.get(key)
        if isinstance(before, dict) and isinstance(value, dict):
            merged[key] = {**before, **value}
        else:
            merged[key] = value
    return merged


_COST_BOOKKEEPING = ("source", "estimated", "price_model", "total_from_parts")


def _sent_cost(doc: Any) -> dict[str, Any]:
    """What a sender said about a run's cost: a stored document without what Goldloop added
    (the estimated parts, a total summed from the parts)."""
    if not isinstance(doc, dict) or doc.get("source") != "sender":
        return {}
    added = set(doc.get("estimated") or ())
    if doc.get("total_from_parts"):
        added.add("total")
    return {k: v for k, v in doc.items() if k not in _COST_BOOKKEEPING and k not in added}


def _apply_cost(
    row: dict[str, Any], patch: RunPatch, prices: PriceTable | None, old_cost: Any
) -> None:
    """The sender's cost figures stand; the price-table estimate fills in only what the sender
    left out: everything when it sent nothing, the missing input or output part when it sent
    parts without a total (the total is then their sum), nothing when it sent a total."""
    sent = {**_sent_cost(old_cost), **_sent_cost(patch.extra.get("cost"))}
    estimate = None
    if prices is not None and row.get("model") and "total" not in sent:
        usage = (row["extra"] or {}).get("usage") or {}
        estimate = prices.cost(
            row["model"],
            row.get("input_tokens"),
            row.get("output_tokens"),
            usage.get("cache_read_tokens"),
            usage.get("cache_write_tokens"),
        )
    if not sent and estimate is None:
        return
    doc: dict[str, Any] = dict(sent)
    estimated = []
    if estimate is not None:
        for part, value in (("input", estimate.input), ("output", estimate.output)):
            if part not in doc:
                doc[part] = round(value, 12)
                estimated.append(part)
    if "total" not in doc and ("input" in doc or "output" in doc):
        doc["total"] = round(doc.get("input", 0.0) + doc.get("output", 0.0), 12)
        if sent:
            doc["total_from_parts"] = True
    if sent:
        doc["source"] = "sender"
        if estimated:
            doc["estimated"] = estimated
    else:
        doc["source"] = "price_table"
    if estimate is not None and estimated:
        doc["price_model"] = estimate.model
    if "total" in doc:
        row["cost"] = doc["total"]
    row["extra"] = {**(row["extra"] or {}), "cost": doc}


def new_row(patch: RunPatch, project_id: str, now: int) -> dict[str, Any]:
    """The stored form of a run nobody has written yet, before the patch is applied."""
    return {
        "project_id": project_id,
        "trace_id": patch.trace_id,
        "parent_id": None,
        "is_root": True,
        "name": "",
        "kind": "chain",
        "status": "pending",
        "start_time": None,
        "end_time": None,
        "latency_us": None,
        "error": None,
        "inputs": None,
        "outputs": None,
        "model": None,
        "provider": None,
        "input_tokens": None,
        "output_tokens": None,
        "total_tokens": None,
        "cost": None,
        "session_id": None,
        "user_id": None,
        "tags": None,
        "metadata": None,
        "extra": None,
        "reference_example_id": None,
        "created_at": now,
        "updated_at": now,
    }


def merge(
    existing: Mapping[str, Any] | None,
    patch: RunPatch,
    *,
    project_id: str,
    now: int,
    prices: PriceTable | None,
) -> dict[str, Any]:
    """The run after ``patch``: a full row of ``VALUE_COLUMNS`` (pure; inputs are not changed)."""
    row = dict(existing) if existing is not None else new_row(patch, project_id, now)
    old_status = row.get("status") or "pending"
    old_sum = (row.get("input_tokens") or 0) + (row.get("output_tokens") or 0)
    old_total = row.get("total_tokens")
    total_was_derived = old_total is None or old_total == old_sum
    fields = patch.fields
    for name, value in fields.items():
        if name in ("status", "tags", "metadata"):
            continue
        row[name] = value
    row["trace_id"] = patch.trace_id
    if "tags" in fields:
        row["tags"] = list(dict.fromkeys([*(row.get("tags") or []), *fields["tags"]]))
    if "metadata" in fields:
        row["metadata"] = {**(row.get("metadata") or {}), **fields["metadata"]}
    old_cost = (row.get("extra") or {}).get("cost")
    if patch.extra:
        row["extra"] = _merge_extra(row.get("extra"), patch.extra)
    row["is_root"] = row.get("parent_id") is None
    start, end = row.get("start_time"), row.get("end_time")
    row["latency_us"] = None
    if start is not None and end is not None and end >= start:
        row["latency_us"] = end - start
    candidates = (old_status, fields.get("status", "pending"), derived_status(row))
    row["status"] = max(candidates, key=lambda s: STATUS_RANK.get(s, 0))
    tokens_given = "input_tokens" in fields or "output_tokens" in fields
    if "total_tokens" not in fields and tokens_given and total_was_derived:
        row["total_tokens"] = (row.get("input_tokens") or 0) + (row.get("output_tokens") or 0)
    _apply_cost(row, patch, prices, old_cost)
    row["updated_at"] = now
    return row
