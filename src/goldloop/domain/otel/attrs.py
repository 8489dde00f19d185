"""A span's attributes as the GenAI mapping reads them: grouped by prefix in one pass.

The mapping (``otel_mapping``) looks up about a hundred attribute names and a dozen key prefixes
(``gen_ai.request.*``, ``llm.input_messages.{i}.*``, ``langsmith.metadata.*``, ...) per span.
Looking a name up is one dict access; scanning every key once per prefix was most of the
mapping's cost. ``SpanAttributes`` sorts the keys under those prefixes in a single pass, and
remembers the attributes it parsed as JSON, so the dedupe step (``otel_dedupe.move_content``)
recognises a parsed value by identity instead of parsing the attribute a second time.
"""

from __future__ import annotations

from typing import Any

from goldloop.domain.otel.messages import parse_json, parse_json_value

# Every prefix the mapping reads as a group. None is a prefix of another, so a key belongs to
# at most one group.
PREFIXES = (
    "gen_ai.request.",
    "gen_ai.agent.",
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "llm.input_messages.",
    "llm.output_messages.",
    "retrieval.documents.",
    "traceloop.association.properties.",
    "langfuse.observation.metadata.",
    "langfuse.trace.metadata.",
    "langsmith.metadata.",
)


def group_by_prefix(attrs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{prefix: {rest: value}}`` for the keys ``prefix + rest`` (rest may be empty), in the
    attributes' order."""
    groups: dict[str, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(PREFIXES):  # most keys: one C call
            continue
        for prefix in PREFIXES:
            if key.startswith(prefix):
                group = groups.get(prefix)
                if group is None:
                    group = groups[prefix] = {}
                group[key[len(prefix) :]] = value
                break
    return groups


class SpanAttributes:
    """Read-only view of one span's attribute dict (which it does not copy or change)."""

    __slots__ = ("_groups", "attrs", "get", "parsed")

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.attrs = attrs
        self.get = attrs.get
        self._groups = group_by_prefix(attrs)
        # attribute -> the value ``json``/``json_value`` parsed from it (see otel_dedupe)
        self.parsed: dict[str, Any] = {}

    def __contains__(self, key: str) -> bool:
        return key in self.attrs

    def __getitem__(self, key: str) -> Any:
        return self.attrs[key]

    def group(self, prefix: str) -> dict[str, Any]:
        """``{rest: value}`` of the keys ``prefix + rest``; ``prefix`` is one of ``PREFIXES``.
        The caller must not change the result."""
        return self._groups.get(prefix) or {}

    def has_any(self, keys: frozenset[str]) -> bool:
        return not keys.isdisjoint(self.attrs)

    def json(self, key: str) -> Any:
        """The attribute parsed if it is a JSON object or array text, else as it is."""
        value = self.attrs.get(key)
        if value is None:  # most of the names asked for: return before any call
            return None
        value = parse_json(value)
        if value is not None:
            self.parsed[key] = value
        return value

    def json_value(self, key: str) -> Any:
        """The attribute parsed if it is any JSON text, else as it is."""
        value = self.attrs.get(key)
        if value is None:
            return None
        value = parse_json_value(value)
        if value is not None:
            self.parsed[key] = value
        return value
