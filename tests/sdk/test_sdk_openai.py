"""wrap_openai against a local OpenAI-compatible server: sync, async, streams, tools, usage."""

from __future__ import annotations

from typing import Any

import pytest
from fake_openai import FakeOpenAI
from sdk_support import RecordingServer, configure_to

import goldloop

openai = pytest.importorskip("openai")

USAGE = {
    "input_tokens": 11,
    "output_tokens": 7,
    "total_tokens": 18,
    "cache_read_tokens": 3,
    "reasoning_tokens": 2,
}
MESSAGES = [{"role": "user", "content": "Say hello"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


def sync_client(llm: FakeOpenAI, clients: list[Any], **options: Any) -> Any:
    client = openai.OpenAI(base_url=llm.base_url, api_key="sk-test", **options)
    clients.append(client)
    return goldloop.wrap_openai(client)


def async_client(llm: FakeOpenAI, clients: list[Any]) -> Any:
    client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="sk-test")
    clients.append(client)
    return goldloop.wrap_openai(client)


def llm_runs(recorder: RecordingServer) -> list[dict[str, Any]]:
    assert goldloop.flush(10)
    runs = [r for r in recorder.runs().values() if r["kind"] == "llm"]
    return sorted(runs, key=lambda r: r["start_time"])


def test_chat_completion_with_tool_calls(
    recorder: RecordingServer, llm: FakeOpenAI, clients: list[Any]
) -> None:
    configure_to(recorder)
    client = sync_client(llm, clients)

    @goldloop.traced(kind="agent")
    def agent() -> Any:
        return client.chat.completions.create(model="gpt-test", messages=MESSAGES, tools=TOOLS)

    reply = agent()
    assert reply.choices[0].message.tool_calls[0].function.name == "get_weather"
    [run] = llm_runs(recorder)
    assert run["name"] == "openai.chat.completions"
    assert run["parent_id"] == recorder.by_name("agent")["id"]
    assert run["model"] == "gpt-test-2026"
    assert run["provider"] == "openai"
    assert run["usage"] == USAGE
    assert run["inputs"]["messages"] == MESSAGES
    assert run["inputs"]["tools"] == TOOLS
    assert run["outputs"]["choices"][0]["message"]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    assert run["status"] == "success"


def test_chat_stream_collects_text_and_usage(
    recorder: RecordingServer, llm: FakeOpenAI, clients: list[Any]
) -> None:
    configure_to(recorder)
    client = sync_client(llm, clients)
    stream = client.chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello there"
    [run] = llm_runs(recorder)
    assert run["outputs"]["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hello there",
    }
    assert run["outputs"]["choices"][0]["finish_reason"] == "stop"
    assert run["usage"] == USAGE
    assert [e["name"] for e in run["events"]] == ["first_item"]


def test_chat_stream_tool_call_deltas_are_joined(
    recorder: RecordingServer, llm: FakeOpenAI, clients: list[Any]
) -> None:
    configure_to(recorder)
    client = sync_client(llm, clients)
    with client.chat.completions.create(
        model="gpt-test", messages=MESSAGES, tools=TOOLS, stream=True
    ) as stream:
        chunks = list(stream)
    assert len(chunks) == 4
    [run] = llm_runs(recorder)
    message = run["outputs"]["choices"][0]["message"]
    assert message["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert "usage" not in run  # not asked for with stream_options


def test_stream_stopped_early_is_recorded(
    recorder: RecordingServer, llm: FakeOpenAI, clients: list[Any]
) -> None:
    configure_to(recorder)
    client = sync_client(llm, clients)
    stream = client.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
    for chunk in stream:
        if chunk.choices[0].delta.content == "Hel":
            break
    stream.close()
    [run] = llm_runs(recorder)
    assert run["metadata"] == {"stopped_early": True}
    assert run["outputs"]["choices"][0]["message"]["content"] == "Hel"


def test_responses_api_sync_and_stream(
    recorder: RecordingServer, llm: FakeOpenAI, clients: list[Any]
) -> None:
    configure_to(recorder)
    client = sync_client(llm, clients)
    plain = client.responses.create(model="gpt-test", input="hi")
    assert plain.output_text == "Hi there"
    events = list(client.responses.create(model="gpt-test", input="hi", stream=True))
    assert events[-1].type == "response.completed"
    plain_run, stream_run = llm_runs(recorder)
    for run in (plain_run, stream_run):
        assert run["name"] == "openai.responses"
        assert run["inputs"]["input"] == "hi"
        assert run["model"] == "gpt-test-2026"
        assert run["usage"] == {
            "input_tokens": 5,
            "output_tokens": 4,
            "total_tokens": 9,
            "cache_read_tokens": 1,
            "reasoning_tokens": 0,
        }
        assert run["outputs"]["output"][0]["content"][0]["text"] == "Hi there"
    assert stream_run["inputs"]["stream"] is True


async def test_async_client_plain_and_streamed(
    recorder: RecordingServer, llm: FakeOpenAI, aclients: list[Any]
) -> None:
    configure_to(recorder)
    client = async_client(llm, aclients)

    @goldloop.traced(kind="agent")
    async def agent() -> str:
        first = await client.chat.completions.create(model="gpt-test", messages=MESSAGES)
        stream = await client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        resp = await client.responses.create(model="gpt-test", input="hi")
        return f"{first.choices[0].message.content}|{''.join(parts)}|{resp.output_text}"

    assert await agent() == "Hello there|Hello there|Hi there"
    runs = llm_runs(recorder)
    root = recorder.by_name("agent")
    assert [r["name"] for r in runs] == [
        "openai.chat.completions",
        "openai.chat.completions",
        "openai.responses",
    ]
    assert {r["parent_id"] for r in runs} == {root["id"]}
    assert runs[1]["outputs"]["choices"][0]["message"]["content"] == "Hello there"
    assert runs[1]["usage"] == USAGE


def test_api_errors_are_recorded_and_raised(
    recorder: RecordingServer, llm: FakeOpenAI, clients: list[Any]
) -> None:
    configure_to(recorder)
    client = sync_client(llm, clients, max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "fail"}]
        )
    [run] = llm_runs(recorder)
    assert run["status"] == "error"
    assert run["error"]["type"] == type(info.value).__qualname__


def test_off_and_double_wrapping(fresh_sdk: None, llm: FakeOpenAI, clients: list[Any]) -> None:
    goldloop.configure(tracing=False)
    client = goldloop.wrap_openai(sync_client(llm, clients))  # twice: wrapped once
    reply = client.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello there"
    assert client.chat.completions.create.__wrapped__.__name__ == "create"
    assert not hasattr(client.chat.completions.create.__wrapped__, "__goldloop_wrapped__")
    assert len(llm.requests) == 1


def test_secrets_in_extra_headers_are_not_recorded(
    recorder: RecordingServer, llm: FakeOpenAI, clients: list[Any]
) -> None:
    configure_to(recorder)
    client = sync_client(llm, clients)
    client.chat.completions.create(
        model="gpt-test", messages=MESSAGES, extra_headers={"x-secret": "s3cret"}, timeout=5
    )
    [run] = llm_runs(recorder)
    assert "extra_headers" not in run["inputs"]
    assert "timeout" not in run["inputs"]
    assert b"s3cret" not in b"".join(r.raw for r in recorder.requests)
