"""Chat messages found in trace content, as a list of typed parts the templates render.

Goldloop stores messages in several shapes: the OpenTelemetry GenAI "parts" form that the OTLP
mapping normalises to (``{role, parts: [{type: text|tool_call|tool_call_response|blob|uri|
reasoning, ...}]}``, with system instructions beside the messages), OpenAI chat messages
(string or list content, ``tool_calls`` with JSON-string arguments, ``tool`` replies), Anthropic
content blocks (``tool_use``, ``tool_result``, ``image``) and LangChain messages (``type:
human``, ``tool_calls`` with ``args``, or their serialised constructor form). Each becomes a
``ChatMessage`` whose parts are text, tool calls (name and pretty-printed arguments), tool
results, images or audio, reasoning, or anything else shown as JSON.

Everything here is untrusted. No value reaches a tag or attribute name; the only value that
reaches an attribute is an inline ``data:`` image whose media type is on a short allow-list and
whose payload is plain base64 (checked here), which the page's CSP (``img-src 'self' data:``)
permits. Remote image and audio addresses are shown as text, never fetched by the browser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from goldloop.domain.otel.messages import parse_json

PartKind = Literal["text", "reasoning", "tool_call", "tool_result", "image", "audio", "json"]

MAX_MESSAGES = 2_000
MAX_INLINE_IMAGE = 2_000_000  # characters of a data: URL shown as an image; larger ones as text
_ROLE_ALIASES = {
    "human": "user",
    "ai": "assistant",
    "AIMessage": "assistant",
    "AIMessageChunk": "assistant",
    "HumanMessage": "user",
    "SystemMessage": "system",
    "ToolMessage": "tool",
    "FunctionMessage": "tool",
    "model": "assistant",
    "function": "tool",
    "developer": "system",
}
_MESSAGE_KEYS = ("messages", "input", "inputs", "prompt", "history")
_TEXT_TYPES = ("text", "input_text", "output_text")
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/]+={0,2}\Z")


@dataclass
class Part:
    kind: PartKind
    text: str | None = None  # text, reasoning, a textual tool result, a media address
    name: str | None = None  # the tool's name (tool_call)
    call_id: str | None = None  # the tool call's id (tool_call, tool_result)
    data: Any = None  # arguments, a structured result, or the raw part (json)
    inline_src: str | None = None  # a checked data: image URL that may be shown inline


@dataclass
class ChatMessage:
    role: str
    parts: list[Part] = field(default_factory=list)
    name: str | None = None
    finish_reason: str | None = None

    @property
    def texts(self) -> list[str]:
        return [p.text for p in self.parts if p.kind == "text" and p.text is not None]


@dataclass
class Chat:
    messages: list[ChatMessage]
    rest: dict[str, Any]  # other keys of the document, shown as JSON under the messages


def _short_str(value: Any, limit: int = 200) -> str | None:
    return value if isinstance(value, str) and value and len(value) <= limit else None


def _media(kind: Literal["image", "audio"], address: Any, mime: Any = None) -> Part:
    text = address if isinstance(address, str) else None
    inline = None
    if (
        kind == "image"
        and text is not None
        and len(text) <= MAX_INLINE_IMAGE
        and _DATA_IMAGE.match(text)
    ):
        inline = text
    if text is not None and text.startswith("data:"):
        text = f"inline {text[5 : text.find(';')] if ';' in text[:64] else kind} data"
    elif text is None and isinstance(mime, str):
        text = f"inline {mime} data"
    return Part(kind, text=text or f"{kind} (no address)", inline_src=inline)


def _tool_call(name: Any, arguments: Any, call_id: Any) -> Part:
    return Part(
        "tool_call",
        name=_short_str(name) or "tool",
        call_id=_short_str(call_id),
        data=parse_json(arguments),
    )


def _tool_result(call_id: Any, response: Any) -> Part:
    response = parse_json(response)
    if isinstance(response, str):
        return Part("tool_result", text=response, call_id=_short_str(call_id))
    return Part("tool_result", call_id=_short_str(call_id), data=response)


def _part(item: Any) -> list[Part]:
    """One content part, in any of the shapes Goldloop stores, as display parts."""
    if isinstance(item, str):
        return [Part("text", text=item)]
    if not isinstance(item, Mapping):
        return [Part("json", data=item)]
    kind = item.get("type")
    if kind in _TEXT_TYPES:
        text = item.get("text", item.get("content"))
        if isinstance(text, str):
            return [Part("text", text=text)]
    if kind in ("reasoning", "thinking"):
        text = item.get("content", item.get("thinking", item.get("text")))
        if isinstance(text, str):
            return [Part("reasoning", text=text)]
    if kind in ("tool_call", "tool_use", "function_call"):
        args = item.get("arguments", item.get("input", item.get("args")))
        return [_tool_call(item.get("name"), args, item.get("id", item.get("call_id")))]
    if kind in ("tool_call_response", "tool_result", "function_call_output"):
        response = item.get("response", item.get("content", item.get("output")))
        call_id = item.get("id", item.get("tool_use_id", item.get("call_id")))
        return [_tool_result(call_id, response)]
    if kind == "image_url":
        url = item.get("image_url")
        return [_media("image", url.get("url") if isinstance(url, Mapping) else url)]
    if kind == "input_audio":
        audio = item.get("input_audio")
        fmt = audio.get("format") if isinstance(audio, Mapping) else None
        return [_media("audio", None, f"audio/{fmt}" if isinstance(fmt, str) else "audio")]
    if kind == "image" and isinstance(item.get("source"), Mapping):  # Anthropic
        source = item["source"]
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            return [_media("image", f"data:{source.get('media_type')};base64,{source['data']}")]
        return [_media("image", source.get("url"))]
    if kind in ("blob", "uri", "file", "image", "audio"):
        modality = item.get("modality") or kind
        media: Literal["image", "audio"] | None = (
            "image" if modality == "image" else "audio" if modality == "audio" else None
        )
        mime = item.get("mime_type")
        if media is not None:
            if kind == "blob" and isinstance(item.get("content"), str) and isinstance(mime, str):
                return [_media(media, f"data:{mime};base64,{item['content']}")]
            return [_media(media, item.get("uri", item.get("url")), mime)]
    return [Part("json", data=dict(item))]


def _tool_calls(calls: Any) -> list[Part]:
    """OpenAI ``tool_calls`` (``function: {name, arguments}``) or LangChain's (``name, args``)."""
    if not isinstance(calls, list):
        return [Part("json", data=calls)] if calls else []
    out = []
    for call in calls:
        if not isinstance(call, Mapping):
            out.append(Part("json", data=call))
            continue
        fn = call.get("function")
        if isinstance(fn, Mapping):
            out.append(_tool_call(fn.get("name"), fn.get("arguments"), call.get("id")))
        else:
            args = call.get("args", call.get("arguments", call.get("input")))
            out.append(_tool_call(call.get("name"), args, call.get("id")))
    return out


def _unwrap_langchain(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    """A serialised LangChain message (``{lc, type: constructor, id: [..., Name], kwargs}``)
    as a plain message with its class name as the role."""
    if doc.get("type") == "constructor" and isinstance(doc.get("kwargs"), Mapping):
        ids = doc.get("id")
        name = ids[-1] if isinstance(ids, list) and ids and isinstance(ids[-1], str) else None
        return {"role": name, **doc["kwargs"]}
    return doc


def _role(doc: Mapping[str, Any]) -> str | None:
    role = doc.get("role")
    if role is None and isinstance(doc.get("type"), str) and "content" in doc:
        role = doc["type"]
    if not isinstance(role, str) or not role or len(role) > 40:
        return None
    return _ROLE_ALIASES.get(role, role)


def _message(raw: Any) -> ChatMessage | None:
    if not isinstance(raw, Mapping):
        return None
    doc = _unwrap_langchain(raw)
    role = _role(doc)
    shapes = ("content", "parts", "tool_calls", "function_call")
    if role is None or not any(key in doc for key in shapes):
        return None
    msg = ChatMessage(role=role, name=_short_str(doc.get("name")))
    finish = doc.get("finish_reason")
    msg.finish_reason = _short_str(finish, 40)
    content = doc.get("parts", doc.get("content"))
    if role == "tool" and "tool_call_id" in doc and not isinstance(content, list):
        msg.parts.append(_tool_result(doc.get("tool_call_id"), content))
    elif isinstance(content, list):
        for item in content:
            msg.parts.extend(_part(item))
    elif content is not None:
        msg.parts.extend(_part(content))
    msg.parts.extend(_tool_calls(doc.get("tool_calls")))
    kwargs = doc.get("additional_kwargs")
    if isinstance(kwargs, Mapping) and "tool_calls" not in doc:
        msg.parts.extend(_tool_calls(kwargs.get("tool_calls")))
    legacy = doc.get("function_call")
    if isinstance(legacy, Mapping):
        msg.parts.append(_tool_call(legacy.get("name"), legacy.get("arguments"), None))
    return msg


def _messages(value: Any) -> list[ChatMessage] | None:
    if not isinstance(value, list) or not value or len(value) > MAX_MESSAGES:
        return None
    out = []
    for item in value:
        msg = _message(item)
        if msg is None:
            return None
        out.append(msg)
    return out


def _system(value: Any) -> ChatMessage | None:
    """System instructions stored beside the messages (``system``: a string or parts)."""
    if isinstance(value, str) and value:
        return ChatMessage("system", [Part("text", text=value)])
    if isinstance(value, list) and value and len(value) <= MAX_MESSAGES:
        msg = ChatMessage("system")
        for item in value:
            msg.parts.extend(_part(item))
        return msg
    return None


def as_chat(value: Any) -> Chat | None:
    """The document as chat messages when it is messages (a list of them, a ``messages`` key
    with optional ``system`` instructions, a single message, an OpenAI-style ``choices``
    answer); otherwise None."""
    direct = _messages(value)
    if direct is not None:
        return Chat(direct, {})
    if not isinstance(value, Mapping):
        return None
    single = _message(value)
    if single is not None:
        return Chat([single], {})
    for key in _MESSAGE_KEYS:
        found = _messages(value.get(key))
        if found is not None:
            rest = {k: v for k, v in value.items() if k != key}
            system = _system(rest.get("system"))
            if system is not None:
                del rest["system"]
                found.insert(0, system)
            return Chat(found, rest)
    choices = value.get("choices")
    if isinstance(choices, list) and choices:
        msgs = [_message(c.get("message")) for c in choices if isinstance(c, Mapping)]
        if msgs and all(m is not None for m in msgs):
            rest = {k: v for k, v in value.items() if k != "choices"}
            return Chat([m for m in msgs if m is not None], rest)
    return None
