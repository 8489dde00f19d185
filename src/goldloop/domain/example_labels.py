"""A short readable label for a dataset example, from its inputs: the first words of the
question (or of the last user message, or of the first text found), so a list of results reads
"What is the refund policy for…" rather than a UUID. Plain text: escaping is the page's job."""

from __future__ import annotations

from typing import Any

import orjson

MAX_WORDS = 8
MAX_CHARS = 60
_PREFERRED = ("question", "input", "query", "prompt", "text", "q", "message", "content")
_DEPTH = 4  # how deep nested inputs are searched for text

__all__ = ["example_label"]


def example_label(inputs: Any, max_words: int = MAX_WORDS, max_chars: int = MAX_CHARS) -> str:
    """The first ``max_words`` words (at most ``max_chars`` characters) of the inputs' text,
    with "…" when cut; "" when the inputs hold nothing to show."""
    text = _text(inputs, _DEPTH)
    if text is None:
        text = "" if inputs in (None, {}, []) else _compact(inputs)
    words = text.split()
    label = " ".join(words[:max_words])
    cut = len(words) > max_words
    if len(label) > max_chars:
        label = label[: max_chars - 1].rstrip()
        cut = True
    return label + "…" if cut else label


def _compact(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return str(value)


def _text(value: Any, depth: int) -> str | None:
    """The text a person would call this input: a string itself; in a list of chat messages,
    the last user message; in an object, a preferred key (question, input, ...) first."""
    if isinstance(value, str):
        return value if value.strip() else None
    if depth <= 0:
        return None
    if isinstance(value, dict):
        messages = value.get("messages")
        if isinstance(messages, list):
            found = _last_user(messages, depth - 1)
            if found is not None:
                return found
        for name in _PREFERRED:
            if name in value:
                found = _text(value[name], depth - 1)
                if found is not None:
                    return found
        for item in value.values():
            found = _text(item, depth - 1)
            if found is not None:
                return found
        return None
    if isinstance(value, list):
        found = _last_user(value, depth - 1)
        if found is not None:
            return found
        for item in value:
            found = _text(item, depth - 1)
            if found is not None:
                return found
    return None


def _last_user(messages: list[Any], depth: int) -> str | None:
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") in ("user", "human"):
            return _text(msg.get("content"), depth)
    return None
