"""@traced, trace(), context(), get_current_run(): what each run records, and how runs nest."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from sdk_support import (
    RecordingServer,
    configure_to,
    iter_tree,
)

import goldloop


def flushed(recorder: RecordingServer) -> dict[str, dict[str, Any]]:
    assert goldloop.flush(10)
    return recorder.runs()


def test_sync_nesting_inputs_outputs(recorder: RecordingServer) -> None:
    configure_to(recorder, project="agent-support")

    class Agent:
        @goldloop.traced(kind="tool", tags=["search"])
        def search(self, query: str, *, limit: int = 3) -> list[str]:
            return [query] * limit

    @goldloop.traced
    def answer(question: str, style: str = "short") -> dict[str, Any]:
        hits = Agent().search(question, limit=2)
        return {"answer": hits[0], "n": len(hits)}

    assert answer("why?") == {"answer": "why?", "n": 2}
    runs = flushed(recorder)
    root, child = recorder.by_name("answer"), recorder.by_name("search")
    assert root.get("parent_id") is None
    assert root.get("kind") == "chain"
    assert child["parent_id"] == root["id"]
    assert child["trace_id"] == root["trace_id"]
    assert len(root["trace_id"]) == 32
    assert root["inputs"] == {"question": "why?"}  # bound args; defaults not invented
    assert child["inputs"] == {"query": "why?", "limit": 2}  # `self` left out
    assert root["outputs"] == {"answer": "why?", "n": 2}
    assert child["outputs"] == {"output": ["why?", "why?"]}
    assert child["kind"] == "tool"
    assert child["tags"] == ["search"]
    assert root["status"] == "success"
    assert root["end_time"] >= root["start_time"]
    assert list(iter_tree(runs, root["id"])) == [(0, "answer"), (1, "search")]
    request = recorder.requests[0]
    assert request.path == "/api/v1/runs/batch"
    assert request.headers["x-api-key"] == "gl_test"
    assert request.headers["content-encoding"] == "gzip"
    assert request.body["project"] == "agent-support"


def test_exception_is_recorded_and_reraised_unchanged(recorder: RecordingServer) -> None:
    configure_to(recorder)
    boom = ValueError("boom")

    @goldloop.traced
    def inner() -> None:
        raise boom

    @goldloop.traced
    def outer() -> None:
        inner()

    with pytest.raises(ValueError, match="boom") as info:
        outer()
    assert info.value is boom
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert frames[-1] == "inner"  # the traceback still ends where it was raised
    flushed(recorder)
    err = recorder.by_name("inner")
    assert err["status"] == "error"
    assert err["error"]["type"] == "ValueError"
    assert err["error"]["message"] == "boom"
    assert "raise boom" in err["error"]["stacktrace"]
    assert recorder.by_name("outer")["status"] == "error"


async def test_async_nesting_across_gather(recorder: RecordingServer) -> None:
    configure_to(recorder)

    @goldloop.traced(kind="tool")
    async def tool(n: int) -> int:
        await asyncio.sleep(0)
        run = goldloop.get_current_run()
        assert run is not None
        assert run.name == "tool"
        return n * 2

    @goldloop.traced(kind="agent")
    async def agent() -> list[int]:
        return list(await asyncio.gather(tool(1), tool(2), tool(3)))

    assert await agent() == [2, 4, 6]
    assert goldloop.get_current_run() is None
    runs = flushed(recorder)
    root = recorder.by_name("agent")
    children = [r for r in runs.values() if r.get("parent_id") == root["id"]]
    assert sorted(c["inputs"]["n"] for c in children) == [1, 2, 3]
    assert {c["trace_id"] for c in children} == {root["trace_id"]}


def test_threads_need_the_helper(recorder: RecordingServer) -> None:
    configure_to(recorder)

    @goldloop.traced
    def work(i: int) -> int:
        return i

    @goldloop.traced
    def fan_out() -> None:
        with goldloop.ContextThreadPoolExecutor(max_workers=2) as pool:
            assert list(pool.map(work, [1, 2])) == [1, 2]
        wrapped = goldloop.copy_context_wrapper(work)
        threads = [threading.Thread(target=wrapped, args=(i,)) for i in (3, 4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        plain = threading.Thread(target=work, args=(5,))
        plain.start()
        plain.join()

    fan_out()
    runs = flushed(recorder)
    root = recorder.by_name("fan_out")
    parents = {r["inputs"]["i"]: r.get("parent_id") for r in runs.values() if r["name"] == "work"}
    assert parents == {1: root["id"], 2: root["id"], 3: root["id"], 4: root["id"], 5: None}


def test_generator_stream_collected_and_early_stop(recorder: RecordingServer) -> None:
    configure_to(recorder)

    @goldloop.traced(kind="llm", reduce="".join)
    def tokens(n: int) -> Iterator[str]:
        for i in range(n):
            assert goldloop.get_current_run() is not None
            yield f"t{i} "

    @goldloop.traced
    def partial() -> list[str]:
        got = []
        gen = tokens(10)
        for tok in gen:
            assert goldloop.get_current_run().name == "partial"  # type: ignore[union-attr]
            got.append(tok)
            if len(got) == 2:
                break
        gen.close()
        return got

    assert "".join(tokens(3)) == "t0 t1 t2 "
    assert partial() == ["t0 ", "t1 "]
    flushed(recorder)
    runs = [r for r in recorder.runs().values() if r["name"] == "tokens"]
    full = next(r for r in runs if r["inputs"]["n"] == 3)
    early = next(r for r in runs if r["inputs"]["n"] == 10)
    assert full["outputs"] == {"output": "t0 t1 t2 "}
    assert full["status"] == "success"
    assert [e["name"] for e in full["events"]] == ["first_item"]
    assert early["outputs"] == {"output": "t0 t1 "}
    assert early["metadata"] == {"stopped_early": True}
    assert early["parent_id"] == recorder.by_name("partial")["id"]


def test_generator_send_return_value_and_error(recorder: RecordingServer) -> None:
    configure_to(recorder)

    @goldloop.traced
    def echo() -> Iterator[int]:
        total = 0
        while True:
            got = yield total
            if got is None:
                return
            if got < 0:
                raise KeyError("negative")
            total += got

    gen = echo()
    assert next(gen) == 0
    assert gen.send(5) == 5
    with contextlib.suppress(StopIteration):
        gen.send(None)
    bad = echo()
    next(bad)
    with pytest.raises(KeyError):
        bad.send(-1)
    flushed(recorder)
    ok, failed = sorted(recorder.runs().values(), key=lambda r: r["start_time"])
    assert ok["outputs"] == {"output": [0, 5]}
    assert ok["status"] == "success"
    assert failed["status"] == "error"
    assert failed["error"]["type"] == "KeyError"


async def test_async_generator_stream_and_early_close(recorder: RecordingServer) -> None:
    configure_to(recorder)

    @goldloop.traced(kind="llm")
    async def stream(n: int) -> AsyncIterator[dict[str, int]]:
        for i in range(n):
            await asyncio.sleep(0)
            yield {"i": i}

    seen = [x async for x in stream(3)]
    assert seen == [{"i": 0}, {"i": 1}, {"i": 2}]
    async with contextlib.aclosing(stream(100)) as agen:  # type: ignore[type-var]
        async for item in agen:
            if item["i"] == 1:
                break
    flushed(recorder)
    done = next(r for r in recorder.runs().values() if r["inputs"]["n"] == 3)
    early = next(r for r in recorder.runs().values() if r["inputs"]["n"] == 100)
    assert done["outputs"] == {"output": [{"i": 0}, {"i": 1}, {"i": 2}]}
    assert early["outputs"] == {"output": [{"i": 0}, {"i": 1}]}
    assert early["metadata"] == {"stopped_early": True}


def test_trace_block_context_and_current_run(recorder: RecordingServer) -> None:
    configure_to(recorder)
    ids: dict[str, str] = {}

    @goldloop.traced(metadata={"v": 1}, tags=["fn"])
    def step(x: int) -> int:
        run = goldloop.get_current_run()
        assert run is not None
        ids["step"] = run.id  # known before the function returns
        run.add_metadata(extra="yes")
        run.set_output({"forced": True})
        return x

    with goldloop.context(session_id="conv-1", user_id="u-9", tags=["prod"], metadata={"env": "t"}):
        with goldloop.trace("block", kind="retriever", inputs={"q": "x"}) as block:
            ids["block"] = block.id
            step(1)
            with goldloop.context(user_id="u-10", tags=["inner"]):
                step(2)
            block.set_output(["doc"])
        with pytest.raises(RuntimeError), goldloop.trace("fails"):
            raise RuntimeError("nope")
    step(3)
    runs = flushed(recorder)
    block_run = runs[ids["block"]]
    assert block_run["inputs"] == {"q": "x"}
    assert block_run["outputs"] == {"output": ["doc"]}
    assert block_run["kind"] == "retriever"
    steps = sorted(
        (r for r in runs.values() if r["name"] == "step"), key=lambda r: r["inputs"]["x"]
    )
    assert steps[0]["session_id"] == "conv-1"
    assert steps[0]["user_id"] == "u-9"
    assert steps[0]["tags"] == ["prod", "fn"]
    assert steps[0]["metadata"] == {"env": "t", "v": 1, "extra": "yes"}
    assert steps[0]["outputs"] == {"forced": True}
    assert steps[0]["parent_id"] == ids["block"]
    assert steps[1]["user_id"] == "u-10"
    assert steps[1]["tags"] == ["prod", "inner", "fn"]
    assert "session_id" not in steps[2]
    assert steps[2].get("parent_id") is None
    assert steps[2]["id"] == ids["step"]
    fails = recorder.by_name("fails")
    assert fails["error"]["type"] == "RuntimeError"
    assert fails["session_id"] == "conv-1"


def test_later_mutation_does_not_change_what_is_sent(recorder: RecordingServer) -> None:
    configure_to(recorder)

    @goldloop.traced
    def keep(messages: list[dict[str, str]]) -> dict[str, list[str]]:
        messages.append({"role": "assistant", "content": "hi"})  # recorded before this
        return {"log": ["a"]}

    msgs = [{"role": "user", "content": "hello"}]
    out = keep(msgs)
    msgs[0]["content"] = "changed"
    out["log"].append("b")
    run = flushed(recorder) and recorder.by_name("keep")
    assert run["inputs"] == {"messages": [{"role": "user", "content": "hello"}]}
    assert run["outputs"] == {"log": ["a"]}


def test_odd_values_never_break_the_call(recorder: RecordingServer) -> None:
    configure_to(recorder)

    class Weird:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    @goldloop.traced
    def odd(a: Any, *rest: Any, **kw: Any) -> Any:
        return {"big": 2**80, "bytes": b"xyz", "set": {1}, 3: "int key"}

    assert odd(Weird(), 1, 2, k=object())["big"] == 2**80
    run = flushed(recorder) and recorder.by_name("odd")
    assert run["inputs"]["a"] == "<unrepresentable Weird>"
    assert run["inputs"]["rest"] == [1, 2]
    assert run["outputs"] == {"big": str(2**80), "bytes": "<3 bytes>", "set": [1], "3": "int key"}


def test_redaction_hooks_run_before_anything_leaves(recorder: RecordingServer) -> None:
    def redact(values: dict[str, Any]) -> dict[str, Any]:
        return {k: ("***" if k == "password" else v) for k, v in values.items()}

    def drop_secret_runs(item: dict[str, Any]) -> dict[str, Any] | None:
        return None if "secret" in (item.get("tags") or []) else item

    configure_to(
        recorder, redact_inputs=redact, redact_outputs=redact, process_run=drop_secret_runs
    )

    @goldloop.traced
    def login(user: str, password: str) -> dict[str, str]:
        return {"user": user, "password": password}

    @goldloop.traced(tags=["secret"])
    def hidden() -> str:
        return "classified"

    login("ann", "hunter2")
    hidden()
    flushed(recorder)
    assert b"hunter2" not in b"".join(r.raw for r in recorder.requests)
    run = recorder.by_name("login")
    assert run["inputs"] == {"user": "ann", "password": "***"}
    assert run["outputs"] == {"user": "ann", "password": "***"}
    assert [r for r in recorder.runs().values() if r["name"] == "hidden"] == []
    assert goldloop.exporter_stats()["filtered"] == 1


def test_a_failing_hook_fails_closed(recorder: RecordingServer) -> None:
    def broken(values: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("bug in hook")

    configure_to(recorder, redact_inputs=broken)

    @goldloop.traced
    def f(card: str) -> int:
        return 1

    assert f("4111-1111") == 1
    flushed(recorder)
    assert recorder.by_name("f")["inputs"] == {"redaction_failed": True}
    assert b"4111" not in b"".join(r.raw for r in recorder.requests)
    assert goldloop.exporter_stats()["hook_errors"] == 1


def test_capture_can_be_turned_off(recorder: RecordingServer) -> None:
    configure_to(recorder, capture_outputs=False)

    @goldloop.traced(capture_inputs=False)
    def f(secret: str) -> str:
        return secret

    assert f("s") == "s"
    run = flushed(recorder) and recorder.by_name("f")
    assert "inputs" not in run
    assert "outputs" not in run


def test_off_means_untouched(fresh_sdk: None) -> None:
    goldloop.configure(tracing=False)
    calls = []

    @goldloop.traced
    def f(x: int) -> int:
        calls.append(goldloop.get_current_run())
        return x + 1

    @goldloop.traced
    def g() -> Iterator[int]:
        yield 1

    with goldloop.trace("block") as run:
        assert goldloop.get_current_run() is None
        assert run.id
        assert run.trace_id
        run.set_output("ignored")
    assert f(1) == 2
    assert calls == [None]
    assert list(g()) == [1]
    assert goldloop.exporter_stats()["tracing"] is False
    assert goldloop.flush(1)


def test_kind_is_checked_when_decorating() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        goldloop.traced(kind="banana")


def test_positional_only_and_unbindable_calls(recorder: RecordingServer) -> None:
    configure_to(recorder)

    @goldloop.traced
    def f(a: int, /, b: int) -> int:
        return a + b

    assert f(1, b=2) == 3
    with pytest.raises(TypeError):
        f(1, 2, 3)  # type: ignore[call-arg]
    flushed(recorder)
    runs = sorted(recorder.runs().values(), key=lambda r: r["start_time"])
    assert runs[0]["inputs"] == {"a": 1, "b": 2}
    assert runs[1]["error"]["type"] == "TypeError"
    assert sys.modules["goldloop"] is goldloop
