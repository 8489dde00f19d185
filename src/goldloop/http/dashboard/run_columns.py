"""The runs table's columns: which exist, which the reader chose (URL, else a cookie, else the
defaults), and the one-line previews of a run's input and output.

Previews are plain text, one line, at most ``PREVIEW_CHARS`` characters; Jinja escapes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from goldloop.http.dashboard.chat_view import ChatMessage, as_chat

COLUMNS: dict[str, str] = {
    "input": "Input",
    "output": "Output",
    "kind": "Kind",
    "status": "Status",
    "start_time": "Start",
    "latency": "Latency",
    "tokens": "Tokens",
    "cost": "Cost",
    "feedback": "Feedback",
    "evals": "Evaluator scores",
    "model": "Model",
    "tags": "Tags",
}
DEFAULT_COLUMNS = (
    "input",
    "output",
    "kind",
    "status",
    "start_time",
    "latency",
    "tokens",
    "cost",
    "feedback",
    "evals",
)
COOKIE = "goldloop_run_columns"
PREVIEW_CHARS = 120
MAX_SCORE_KEYS = 6  # score columns per group; more keys on a page show in the title only

# Keys whose string value is what was asked / what was answered, in that order of preference.
_INPUT_KEYS = ("question", "input", "query", "message", "text", "content", "prompt", "user_input")
_OUTPUT_KEYS = ("answer", "output", "response", "text", "content", "result", "reply")


def chosen(from_url: Iterable[str] | None, from_cookie: str | None) -> list[str]:
    """The columns to show, in table order: the URL's ``col`` values when the picker was
    submitted (``from_url`` not None), else the cookie's, else the defaults. Unknown names are
    ignored."""
    if from_url is not None:
        wanted = set(from_url)
    elif from_cookie:
        wanted = set(from_cookie.split("."))
    else:
        wanted = set(DEFAULT_COLUMNS)
    return [c for c in COLUMNS if c in wanted]


def cookie_value(columns: Iterable[str]) -> str:
    return ".".join(c for c in columns if c in COLUMNS) or "none"


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _message_text(messages: list[ChatMessage], roles: tuple[str, ...]) -> str | None:
    """The text of the last message in one of ``roles`` (tool calls by name when it has no
    text)."""
    for message in reversed(messages):
        if message.role not in roles:
            continue
        texts = [p.text for p in message.parts if p.kind == "text" and p.text]
        if texts:
            return " ".join(texts)
        calls = [f"{p.name}(…)" for p in message.parts if p.kind == "tool_call" and p.name]
        if calls:
            return "→ " + ", ".join(calls)
    return None


def preview(value: Any, *, output: bool) -> str | None:
    """A one-line text for a run's inputs (``output`` False) or outputs: the last user (or
    assistant) message of a chat, a ``question``/``answer``-like string, a lone string value,
    else compact JSON. None when there is nothing."""
    if value is None:
        return None
    if isinstance(value, str):
        return _one_line(value) or None
    chat = as_chat(value)
    if chat is not None:
        text = _message_text(chat.messages, ("assistant",) if output else ("user",))
        if text is None:
            text = _message_text(chat.messages, ("assistant", "user", "tool", "system"))
        if text:
            return _one_line(text)
    if isinstance(value, Mapping):
        for key in _OUTPUT_KEYS if output else _INPUT_KEYS:
            if isinstance(value.get(key), str):
                return _one_line(str(value[key])) or None
        strings = [v for v in value.values() if isinstance(v, str)]
        if len(value) == 1 and strings:
            return _one_line(strings[0]) or None
        if not value:
            return None
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = repr(value)
    return _one_line(text[: PREVIEW_CHARS * 4])


def score_keys(scores: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """The keys to give a column (most common on the page first, then by name) and the rest."""
    counts: dict[str, int] = {}
    for per_run in scores.values():
        for key in per_run:
            counts[key] = counts.get(key, 0) + 1
    ordered = sorted(counts, key=lambda k: (-counts[k], k))
    return ordered[:MAX_SCORE_KEYS], ordered[MAX_SCORE_KEYS:]
