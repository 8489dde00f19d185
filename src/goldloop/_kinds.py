"""The run kinds and statuses, shared by the SDK and the server (stdlib only, so importing the
SDK stays light)."""

from __future__ import annotations

KINDS = (
    "llm",
    "chain",
    "tool",
    "retriever",
    "embedding",
    "agent",
    "prompt",
    "parser",
    "reranker",
    "guardrail",
    "evaluator",
    "unknown",
)
STATUSES = ("success", "error", "pending")
