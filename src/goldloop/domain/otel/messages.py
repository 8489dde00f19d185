"""Chat messages from OTel attributes, normalised to the GenAI "parts" form (otel-genai.md 5.3).

Sources: ``gen_ai.input.messages``/``gen_ai.output.messages`` (already parts form, as structured
values or JSON strings), OpenInference flattened ``llm.input_messages.{i}.message.*``, legacy
``gen_ai.prompt.{i}.*`` / ``gen_ai.completion.{i}.*``, and the deprecated message events
(``gen_ai.user.message``, ``gen_ai.choice``, ``gen_ai.content.prompt``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson


def parse_json(value: Any) -> Any:
    """A JSON string parsed, else the value as is (truncated or invalid JSON stays a string)."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def parse_json_value(value: Any) -> Any:
    """Like ``parse_json`` for attributes documented as JSON of any type (e.g. ``"y"``)."""
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def unflatten(attrs: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``prefix.{i}.rest`` keys -> a list (by numeric index, gaps allowed) of {rest: value}."""
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if index.isdigit() and rest:
            groups.setdefault(int(index), {})[rest] = value
    return [groups[i] for i in sorted(groups)]


def _text(content: Any) -> dict[str, Any]:
    return {"type": "text", "content": content}


def _arguments(raw: Any) -> Any:
    return parse_json(raw) if isinstance(raw, str) else raw


def _oi_message(flat: dict[str, Any], output: bool, finish: Any) -> dict[str, Any]:
    role = flat.get("message.role") or ("assistant" if output else "user")
    parts: list[dict[str, Any]] = []
    if flat.get("message.content") is not None:
        if role == "tool":
            parts.append(
                {
                    "type": "tool_call_response",
                    "id": flat.get("message.tool_call_id"),
                    "response": flat["message.content"],
                }
            )
        else:
            parts.append(_text(flat["message.content"]))
    for item in unflatten(flat, "message.contents."):
        kind = item.get("message_content.type")
        if kind == "image":
            url = item.get("message_content.image.image.url", "")
            if isinstance(url, str) and url.startswith("data:"):
                parts.append({"type": "blob", "modality": "image", "content": url})
            else:
                parts.append({"type": "uri", "modality": "image", "uri": url})
        elif kind == "reasoning":
            parts.append({"type": "reasoning", "content": item.get("message_content.text")})
        else:
            parts.append(_text(item.get("message_content.text")))
    for call in unflatten(flat, "message.tool_calls."):
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("tool_call.id"),
                "name": call.get("tool_call.function.name"),
                "arguments": _arguments(call.get("tool_call.function.arguments")),
            }
        )
    message: dict[str, Any] = {"role": role, "parts": parts}
    if flat.get("message.name"):
        message["name"] = flat["message.name"]
    if output:
        message["finish_reason"] = finish or "stop"
    return message


def openinference(
    group: Mapping[str, Any], finish: Any, output: bool
) -> list[dict[str, Any]] | None:
    """Messages from the ``llm.input_messages.`` (or ``llm.output_messages.``) attributes, given
    with that prefix taken off (``{"0.message.role": ...}``)."""
    flats = unflatten(group, "")
    if not flats:
        return None
    return [_oi_message(f, output, finish) for f in flats]


def legacy_genai(group: Mapping[str, Any], output: bool) -> list[dict[str, Any]] | None:
    """OpenLLMetry-style ``gen_ai.prompt.{i}.role|content`` / ``gen_ai.completion.{i}.*``,
    given with that prefix taken off (``{"0.role": ...}``)."""
    flats = unflatten(group, "")
    if not flats:
        return None
    messages = []
    for flat in flats:
        parts: list[dict[str, Any]] = []
        if flat.get("content") is not None:
            parts.append(_text(flat["content"]))
        for call in unflatten(flat, "tool_calls."):
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id"),
                    "name": call.get("name"),
                    "arguments": _arguments(call.get("arguments")),
                }
            )
        message: dict[str, Any] = {
            "role": flat.get("role") or ("assistant" if output else "user"),
            "parts": parts,
        }
        if output:
            message["finish_reason"] = flat.get("finish_reason") or "stop"
        messages.append(message)
    return messages


def _event_message(role: str, body: Mapping[str, Any]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if role == "tool":
        parts.append(
            {"type": "tool_call_response", "id": body.get("id"), "response": body.get("content")}
        )
    elif body.get("content") is not None:
        parts.append(_text(body["content"]))
    for call in body.get("tool_calls") or []:
        fn = call.get("function") or {}
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": fn.get("name"),
                "arguments": _arguments(fn.get("arguments")),
            }
        )
    return {"role": body.get("role") or role, "parts": parts}


MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}


def from_events(
    events: list[tuple[str, Mapping[str, Any]]],
) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    """(input messages, output messages) from deprecated GenAI events, each (name, body)."""
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    for name, body in events:
        if name in MESSAGE_EVENTS:
            inputs.append(_event_message(MESSAGE_EVENTS[name], body))
        elif name == "gen_ai.choice":
            message = body.get("message") if isinstance(body.get("message"), dict) else {}
            out = _event_message("assistant", message or {})
            out["finish_reason"] = body.get("finish_reason") or "stop"
            outputs.append(out)
        elif name == "gen_ai.content.prompt":
            parsed = parse_json(body.get("gen_ai.prompt"))
            inputs.extend(
                parsed if isinstance(parsed, list) else [{"role": "user", "parts": [_text(parsed)]}]
            )
        elif name == "gen_ai.content.completion":
            parsed = parse_json(body.get("gen_ai.completion"))
            outputs.extend(
                parsed
                if isinstance(parsed, list)
                else [{"role": "assistant", "parts": [_text(parsed)]}]
            )
    return inputs or None, outputs or None
