"""The SDK against the real server: in-process (ASGI transport) and over a real socket.

The acceptance test of issue 4: a nested async agent with tool calls, a streamed LLM call and an
exception shows up as one correct trace tree, read back through ``GET /api/v1/traces/{id}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_openai import FakeOpenAI
from fastapi import FastAPI

import goldloop

openai = pytest.importorskip("openai")
SRC = str(Path(goldloop.__file__).resolve().parents[1])
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]


def tree(trace: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(r["depth"], r["name"], r["status"]) for r in trace["runs"]]


async def test_acceptance_agent_trace_read_back_through_the_api(
    app: FastAPI,
    admin_key: str,
    client: httpx.AsyncClient,
    fresh_sdk: None,
    llm: FakeOpenAI,
    aclients: list[Any],
) -> None:
    goldloop.configure(
        tracing=True,
        endpoint="http://goldloop.test",
        api_key=admin_key,
        project="agent-support",
        transport=httpx.ASGITransport(app=app),
        flush_interval_s=3600,
    )
    llm_client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="sk-test")
    aclients.append(llm_client)
    goldloop.wrap_openai(llm_client)
    seen: dict[str, str] = {}

    @goldloop.traced(kind="tool")
    async def get_weather(city: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"city": city, "temp_c": 14}

    @goldloop.traced(kind="retriever")
    async def lookup(topic: str) -> list[str]:
        return [f"doc about {topic}"]

    @goldloop.traced(kind="tool")
    async def book_table(when: str) -> str:
        raise TimeoutError(f"booking service timed out for {when}")

    @goldloop.traced(kind="agent", tags=["prod"])
    async def agent(question: str) -> str:
        run = goldloop.get_current_run()
        assert run is not None
        seen["trace_id"], seen["root_id"] = run.trace_id, run.id
        first = await llm_client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": question}], tools=TOOLS
        )
        call = first.choices[0].message.tool_calls[0]
        weather, docs = await asyncio.gather(
            get_weather(**json.loads(call.function.arguments)), lookup("paris")
        )
        with contextlib.suppress(TimeoutError):  # the agent recovers; the run keeps the error
            await book_table("19:00")
        stream = await llm_client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": f"{weather} {docs}"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    with goldloop.context(session_id="conv-1", user_id="u-9"):
        assert await agent("Weather in Paris?") == "Hello there"
    assert await asyncio.to_thread(goldloop.flush, 30)
    stats = goldloop.exporter_stats()
    assert stats["exported"] == 6
    assert stats["dropped_failed"] == 0
    assert stats["dropped_rejected"] == 0

    resp = await client.get(f"/api/v1/traces/{seen['trace_id']}")
    assert resp.status_code == 200, resp.text
    trace = resp.json()
    assert trace["run_count"] == 6
    assert trace["root_ids"] == [seen["root_id"]]
    shape = tree(trace)
    assert shape[0] == (0, "agent", "success")
    assert sorted(shape[1:]) == sorted(
        [
            (1, "openai.chat.completions", "success"),
            (1, "get_weather", "success"),
            (1, "lookup", "success"),
            (1, "book_table", "error"),
            (1, "openai.chat.completions", "success"),
        ]
    )
    runs = {r["name"]: r for r in trace["runs"]}
    llm_runs = [r for r in trace["runs"] if r["kind"] == "llm"]
    assert all(not r["orphan"] for r in trace["runs"])
    assert runs["agent"]["session_id"] == "conv-1"
    assert runs["agent"]["tags"] == ["prod"]
    assert runs["get_weather"]["inputs"] == {"city": "Paris"}
    assert runs["get_weather"]["outputs"] == {"city": "Paris", "temp_c": 14}
    assert runs["get_weather"]["user_id"] == "u-9"
    assert runs["book_table"]["error"]["type"] == "TimeoutError"
    assert "booking service timed out" in runs["book_table"]["error"]["message"]
    streamed = max(llm_runs, key=lambda r: r["start_time"])
    assert streamed["outputs"]["choices"][0]["message"]["content"] == "Hello there"
    assert streamed["model"] == "gpt-test-2026"
    assert streamed["usage"]["input_tokens"] == 11
    assert streamed["usage"]["output_tokens"] == 7
    tool_llm = min(llm_runs, key=lambda r: r["start_time"])
    assert tool_llm["outputs"]["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == (
        "get_weather"
    )
    project = (await client.get("/api/v1/projects", params={"name": "agent-support"})).json()
    assert project["items"][0]["id"] == runs["agent"]["project_id"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`goldloop serve` as a subprocess on a real socket: (base url, admin key)."""
    port = _free_port()
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOLDLOOP_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "goldloop", "serve", "--port", str(port), "--data-dir", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**env, "PYTHONPATH": SRC},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "server exited"
            assert time.monotonic() < deadline, "server not ready in 60 s"
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield base, (data / "admin-key").read_text().strip()
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.slow
def test_over_a_real_socket_with_gzip(fresh_sdk: None, served: tuple[str, str]) -> None:
    base, key = served
    goldloop.configure(tracing=True, endpoint=base, api_key=key, project="socket-test")

    @goldloop.traced(kind="tool")
    def step(i: int) -> int:
        return i * i

    @goldloop.traced
    def pipeline(n: int) -> int:
        with goldloop.ContextThreadPoolExecutor(max_workers=4) as pool:
            return sum(pool.map(step, range(n)))

    assert pipeline(20) == sum(i * i for i in range(20))
    run = None
    with goldloop.trace("outer") as outer:
        run = outer
        pipeline(3)
    assert goldloop.flush(30)
    assert goldloop.exporter_stats()["exported"] == 21 + 5
    with httpx.Client(base_url=base, headers={"x-api-key": key}, timeout=10) as c:
        trace = c.get(f"/api/v1/traces/{run.trace_id}").json()
    assert [(r["depth"], r["name"]) for r in trace["runs"]] == [
        (0, "outer"),
        (1, "pipeline"),
        (2, "step"),
        (2, "step"),
        (2, "step"),
    ]
