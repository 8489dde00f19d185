"""What every judge shares: the endpoint, the cache, the budget, prompt hashing and the safe
rendering of untrusted text into a prompt."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from goldloop.evaluation._judge_cache import (
    JsonlJudgeCache,
    JudgeBudget,
    JudgeCache,
    MemoryJudgeCache,
    cache_key,
)
from goldloop.evaluation._judge_http import JudgeEndpoint, JudgeHTTP
from goldloop.evaluation._select import to_text

__all__ = ["JudgeCall", "JudgeCore", "prompt_hash", "render_value", "shared_cache"]

_DEFAULT_CACHE = MemoryJudgeCache()
_FILE_CACHES: dict[Path, JsonlJudgeCache] = {}
_FILE_CACHES_LOCK = threading.Lock()


def shared_cache(spec: bool | str | JudgeCache | None) -> JudgeCache | None:
    """``True``/``None``: the process-wide memory cache; ``False``: no cache; a path: a JSONL
    file cache (one object per path in this process); a cache object: itself."""
    if spec is None or spec is True:
        return _DEFAULT_CACHE
    if spec is False:
        return None
    if isinstance(spec, str):
        path = Path(spec).expanduser().resolve()
        with _FILE_CACHES_LOCK:
            if path not in _FILE_CACHES:
                _FILE_CACHES[path] = JsonlJudgeCache(path)
            return _FILE_CACHES[path]
    return spec


def prompt_hash(*templates: str) -> str:
    """First 16 hex digits of SHA-256 over the prompt templates (placeholders unfilled), so a
    score can be traced to the exact prompt wording that produced it."""
    digest = hashlib.sha256("\x1e".join(templates).encode()).hexdigest()
    return digest[:16]


def render_value(value: Any, limit: int) -> str:
    """Untrusted text for a prompt: JSON for structured values, closing tags neutralised so the
    content cannot end its own delimiter, long text truncated with a marker."""
    text = to_text(value).replace("</", "<\\/")
    if len(text) > limit:
        text = text[:limit] + f"\n…[truncated {len(text) - limit} characters]"
    return text


@dataclass(frozen=True, slots=True)
class JudgeCall:
    content: str | None
    """The judge's answer; None when the call was skipped for the budget."""
    input_tokens: int = 0
    output_tokens: int = 0
    cached: bool = False
    model: str | None = None


class JudgeCore:
    """Cache, then budget, then the endpoint."""

    def __init__(
        self,
        endpoint: JudgeEndpoint,
        *,
        cache: bool | str | JudgeCache | None = True,
        budget: JudgeBudget | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.cache = shared_cache(cache)
        self.budget = budget
        self.http = JudgeHTTP(endpoint, transport=transport)

    def close(self) -> None:
        self.http.close()

    def call(self, messages: Sequence[Mapping[str, str]], prompt_id: str) -> JudgeCall:
        key = cache_key(
            {"judge": self.endpoint.identity(), "prompt": prompt_id, "messages": list(messages)}
        )
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None and isinstance(hit.get("content"), str):
                return JudgeCall(hit["content"], cached=True, model=hit.get("model"))
        reserved = (_estimate_tokens(messages), self.endpoint.max_tokens)
        if self.budget is not None and not self.budget.reserve(*reserved):
            return JudgeCall(None)
        try:
            reply = self.http.chat(messages)
        except BaseException:
            if self.budget is not None:
                self.budget.settle(reserved, 0, 0)
            raise
        if self.budget is not None:
            self.budget.settle(reserved, reply.input_tokens, reply.output_tokens)
        if self.cache is not None:
            self.cache.put(key, {"content": reply.content, "model": reply.model})
        return JudgeCall(reply.content, reply.input_tokens, reply.output_tokens, False, reply.model)

    def skipped_message(self) -> str:
        spent = self.budget.describe() if self.budget is not None else ""
        return f"judge budget spent ({spent}); not judged"


def _estimate_tokens(messages: Sequence[Mapping[str, str]]) -> int:
    # about 4 characters per token in English; count 3 to stay on the safe side
    chars = sum(len(m.get("content", "")) for m in messages)
    return chars // 3 + 8 * len(messages) + 16
