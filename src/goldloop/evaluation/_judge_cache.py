"""The judge's result cache and its token/cost budget.

Cache: keyed by a hash of (judge endpoint identity, prompt, filled-in messages), so re-running
an evaluation with the same judge on the same inputs costs nothing. In memory by default;
``JsonlJudgeCache(path)`` also keeps entries in an append-only JSON-lines file that survives
processes (one object per line: ``{"key": ..., "value": {...}}``; the last line for a key wins).

Budget: a limit on tokens and/or money for one evaluation run. Each judge call *reserves* its
worst case (estimated prompt tokens + max output tokens) before it starts and settles to the
real usage after, so concurrent calls can never overshoot the limit; when a reservation does
not fit, the judge skips and says so in the result.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import orjson

__all__ = ["JsonlJudgeCache", "JudgeBudget", "JudgeCache", "MemoryJudgeCache", "cache_key"]


def cache_key(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


class JudgeCache(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: Mapping[str, Any]) -> None: ...


class MemoryJudgeCache:
    """A bounded least-recently-used cache in memory (thread-safe)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._data: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return dict(value)

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        with self._lock:
            self._data[key] = dict(value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)


class JsonlJudgeCache(MemoryJudgeCache):
    """Memory in front of an append-only JSON-lines file. A torn last line (a crash
    mid-write) is skipped on load."""

    def __init__(self, path: str | os.PathLike[str], max_entries: int = 1_000_000) -> None:
        super().__init__(max_entries)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            with self.path.open("rb") as fh:
                for line in fh:
                    try:
                        item = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(item, dict) and isinstance(item.get("key"), str):
                        super().put(item["key"], item.get("value") or {})
        self._file_lock = threading.Lock()

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        super().put(key, value)
        line = orjson.dumps({"key": key, "value": dict(value)}) + b"\n"
        with self._file_lock, self.path.open("ab") as fh:
            fh.write(line)


class JudgeBudget:
    """Token and/or cost limit shared by the judge calls of one evaluation run.

    Cost is computed from ``input_cost_per_1k`` / ``output_cost_per_1k`` (currency units per
    1,000 tokens). Thread-safe.
    """

    def __init__(
        self,
        *,
        max_tokens: int | None = None,
        max_cost: float | None = None,
        input_cost_per_1k: float = 0.0,
        output_cost_per_1k: float = 0.0,
    ) -> None:
        if max_cost is not None and input_cost_per_1k == 0 and output_cost_per_1k == 0:
            raise ValueError("a cost budget needs input_cost_per_1k and/or output_cost_per_1k")
        self.max_tokens, self.max_cost = max_tokens, max_cost
        self.input_cost_per_1k, self.output_cost_per_1k = input_cost_per_1k, output_cost_per_1k
        self._lock = threading.Lock()
        self.used_tokens = 0
        self.used_cost = 0.0
        self._reserved_tokens = 0
        self._reserved_cost = 0.0
        self.calls = 0
        self.skipped = 0

    def _cost(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.input_cost_per_1k + output_tokens * self.output_cost_per_1k
        ) / 1000.0

    def reserve(self, input_tokens: int, output_tokens: int) -> bool:
        """Hold the worst case of one call; False (and counted as skipped) if it does not fit."""
        tokens = input_tokens + output_tokens
        cost = self._cost(input_tokens, output_tokens)
        with self._lock:
            over_tokens = (
                self.max_tokens is not None
                and self.used_tokens + self._reserved_tokens + tokens > self.max_tokens
            )
            over_cost = (
                self.max_cost is not None
                and self.used_cost + self._reserved_cost + cost > self.max_cost
            )
            if over_tokens or over_cost:
                self.skipped += 1
                return False
            self._reserved_tokens += tokens
            self._reserved_cost += cost
            return True

    def settle(self, reserved: tuple[int, int], actual_input: int, actual_output: int) -> None:
        """Release a reservation and charge what the call really used."""
        with self._lock:
            self._reserved_tokens -= reserved[0] + reserved[1]
            self._reserved_cost -= self._cost(*reserved)
            self.used_tokens += actual_input + actual_output
            self.used_cost += self._cost(actual_input, actual_output)
            self.calls += 1

    def describe(self) -> str:
        parts = []
        if self.max_tokens is not None:
            parts.append(f"{self.used_tokens:,} of {self.max_tokens:,} tokens")
        if self.max_cost is not None:
            parts.append(f"{self.used_cost:.4f} of {self.max_cost:.4f} cost")
        return ", ".join(parts) or "unlimited"

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "max_cost": self.max_cost,
            "used_tokens": self.used_tokens,
            "used_cost": self.used_cost,
            "calls": self.calls,
            "skipped": self.skipped,
        }
