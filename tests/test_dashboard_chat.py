"""Messages render as a conversation in every shape Goldloop stores (issue #23, item 1).

The unit half feeds ``chat_view.as_chat`` each shape; the page half sends real OTLP requests
(GenAI semconv and OpenInference) and reads the trace panel the way a user would.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from goldloop.http.dashboard import chat_view
from otlp_builders import request, span

EVIL = '<script>window.__xss=1</script><img src=x onerror="window.__xss=1">'
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"  # noqa: E501
PB = {"content-type": "application/x-protobuf"}
TRACE = "7c9efff798038103d269b633813fc60c"
OI_CALL = "llm.output_messages.0.message.tool_calls.0.tool_call"


def kinds(msg: chat_view.ChatMessage) -> list[str]:
    return [p.kind for p in msg.parts]


def test_otel_parts_form_with_system_instructions_beside_the_messages() -> None:
    chat = chat_view.as_chat(
        {
            "system": [{"type": "text", "content": "be brief"}],
            "messages": [
                {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
                {
                    "role": "assistant",
                    "parts": [
                        {"type": "reasoning", "content": "need the tool"},
                        {
                            "type": "tool_call",
                            "id": "c1",
                            "name": "get_weather",
                            "arguments": {"city": "Paris"},
                        },
                    ],
                    "finish_reason": "tool_call",
                },
                {
                    "role": "tool",
                    "parts": [{"type": "tool_call_response", "id": "c1", "response": "rainy"}],
                },
                {
                    "role": "user",
                    "parts": [
                        {"type": "uri", "modality": "image", "uri": "https://example.test/a.png"},
                        {
                            "type": "blob",
                            "modality": "image",
                            "mime_type": "image/png",
                            "content": PNG.split(",", 1)[1],
                        },
                        {"type": "file", "modality": "video", "file_id": "f1"},
                    ],
                },
            ],
        }
    )
    assert chat is not None
    assert [m.role for m in chat.messages] == ["system", "user", "assistant", "tool", "user"]
    assert chat.rest == {}  # system moved into the conversation, nothing left as raw JSON
    assert chat.messages[0].texts == ["be brief"]
    assistant = chat.messages[2]
    assert kinds(assistant) == ["reasoning", "tool_call"]
    call = assistant.parts[1]
    assert (call.name, call.call_id, call.data) == ("get_weather", "c1", {"city": "Paris"})
    assert assistant.finish_reason == "tool_call"
    result = chat.messages[3].parts[0]
    assert (result.kind, result.call_id, result.text) == ("tool_result", "c1", "rainy")
    remote, inline, other = chat.messages[4].parts
    assert remote.kind == "image"
    assert remote.inline_src is None
    assert remote.text == "https://example.test/a.png"
    assert inline.kind == "image"
    assert inline.inline_src == PNG
    assert other.kind == "json"
    assert other.data["file_id"] == "f1"


def test_openai_tool_calls_show_the_function_name_and_parsed_arguments() -> None:
    chat = chat_view.as_chat(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "refund?"},
                        {"type": "image_url", "image_url": {"url": PNG}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "lookup_rate", "arguments": '{"rate": "NR-7"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": '{"refundable": false}'},
                {"role": "assistant", "function_call": {"name": "legacy", "arguments": "{}"}},
            ]
        }
    )
    assert chat is not None
    user, assistant, tool, legacy = chat.messages
    assert kinds(user) == ["text", "image"]
    assert user.parts[1].inline_src == PNG
    (call,) = assistant.parts
    assert (call.kind, call.name, call.call_id, call.data) == (
        "tool_call",
        "lookup_rate",
        "call_1",
        {"rate": "NR-7"},
    )
    assert (tool.parts[0].kind, tool.parts[0].data) == ("tool_result", {"refundable": False})
    assert (legacy.parts[0].kind, legacy.parts[0].name) == ("tool_call", "legacy")


def test_anthropic_blocks_and_langchain_messages() -> None:
    anthropic = chat_view.as_chat(
        [
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": PNG.split(",", 1)[1],
                        },
                    },
                    {"type": "text", "text": "what is this?"},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "tu1", "name": "search", "input": {"q": "x"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "tu1", "content": "found"},
                ],
            },
        ]
    )
    assert anthropic is not None
    assert kinds(anthropic.messages[0]) == ["image", "text"]
    assert anthropic.messages[0].parts[0].inline_src == PNG
    assert (anthropic.messages[1].parts[0].name, anthropic.messages[1].parts[0].data) == (
        "search",
        {"q": "x"},
    )
    assert anthropic.messages[2].parts[0].text == "found"

    langchain = chat_view.as_chat(
        [
            {
                "lc": 1,
                "type": "constructor",
                "id": ["langchain", "schema", "HumanMessage"],
                "kwargs": {"content": "hi"},
            },
            {
                "type": "ai",
                "content": "",
                "tool_calls": [{"name": "lookup", "args": {"id": 7}, "id": "t1"}],
            },
        ]
    )
    assert langchain is not None
    assert [m.role for m in langchain.messages] == ["user", "assistant"]
    assert (langchain.messages[1].parts[-1].name, langchain.messages[1].parts[-1].data) == (
        "lookup",
        {"id": 7},
    )


@pytest.mark.parametrize(
    "address",
    [
        "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=",  # SVG can carry script: never inline
        'data:image/png;base64,AAAA" onerror="x',  # not plain base64
        "javascript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
    ],
)
def test_only_plain_base64_raster_images_are_shown_inline(address: str) -> None:
    chat = chat_view.as_chat(
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": address}}]}]
    )
    assert chat is not None
    part = chat.messages[0].parts[0]
    assert part.kind == "image"
    assert part.inline_src is None


@pytest.mark.parametrize(
    "value",
    [
        {"question": "q"},
        ["a", "b"],
        [{"role": "user"}],
        "text",
        None,
        3,
        [],
        {"role": "x" * 41, "content": "long role"},
    ],
)
def test_documents_that_are_not_messages(value: Any) -> None:
    assert chat_view.as_chat(value) is None


def _otlp_llm_spans() -> list[Any]:
    genai = span(
        TRACE,
        "aaa19b7ec3c1b175",
        None,
        "chat gpt-4o",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "be brief"}]),
            "gen_ai.input.messages": json.dumps(
                [
                    {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
                ]
            ),
            "gen_ai.output.messages": json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [
                            {
                                "type": "tool_call",
                                "id": "c1",
                                "name": "get_weather",
                                "arguments": {"city": EVIL},
                            }
                        ],
                        "finish_reason": "tool_call",
                    }
                ]
            ),
        },
        kind=3,
    )
    openinference = span(
        TRACE,
        "bbb19b7ec3c1b176",
        "aaa19b7ec3c1b175",
        "ChatOpenAI",
        {
            "openinference.span.kind": "LLM",
            "llm.model_name": "gpt-4o-mini",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "Is rate NR-7 refundable?",
            "llm.output_messages.0.message.role": "assistant",
            f"{OI_CALL}.function.name": "lookup_rate",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": (
                '{"rate": "NR-7"}'
            ),
        },
        kind=3,
    )
    return [genai, openinference]


async def test_otlp_llm_spans_read_as_a_conversation_in_the_trace_panel(
    client: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    sent = await client.post(
        "/v1/traces", content=request(_otlp_llm_spans()).SerializeToString(), headers=PB
    )
    assert sent.status_code == 200, sent.text
    tree = (await client.get(f"/api/v1/traces/{TRACE}")).json()
    ids = {r["name"]: r["id"] for r in tree["runs"]}

    genai = await browser.get(f"/traces/{TRACE}", params={"run": ids["chat gpt-4o"]})
    assert genai.status_code == 200
    text = genai.text
    assert 'class="msg role-system"' in text
    assert "be brief" in text
    assert 'class="msg role-user"' in text
    assert "Weather in Paris?" in text
    assert '<code class="tool-name">get_weather</code>' in text
    assert "finish: tool_call" in text
    assert EVIL not in text  # the argument is escaped ...
    assert "&#34;city&#34;: &#34;&lt;script&gt;" in text  # ... and shown pretty-printed
    assert not re.search(r"\[ \d+ items? \]", _chat_section(text))  # no JSON disclosure

    oi = await browser.get(f"/traces/{TRACE}", params={"run": ids["ChatOpenAI"]})
    assert "Is rate NR-7 refundable?" in oi.text
    assert '<code class="tool-name">lookup_rate</code>' in oi.text
    assert "&#34;rate&#34;: &#34;NR-7&#34;" in oi.text  # arguments parsed and indented


def _chat_section(page: str) -> str:
    """The rendered conversations of a page, without the "Raw JSON" disclosures."""
    chats = re.findall(r'<div class="chat">.*?</div>\s*</div>\s*</div>', page, flags=re.S)
    assert chats, "no conversation rendered"
    return "".join(chats)
