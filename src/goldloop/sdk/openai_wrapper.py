"""``goldloop.wrap_openai(client)``: an ``llm`` run for every chat completion and response.

Patches ``client.chat.completions.create`` and ``client.responses.create`` on this client
instance (sync ``OpenAI`` or ``AsyncOpenAI``, and compatible clients such as Azure's). Each call
records the request parameters as inputs, the response as outputs, the model, token usage
(including cached and reasoning tokens) and tool calls. Streams are passed through chunk by
chunk and recorded when they end, also when the consumer stops early; chat streams carry token
usage only when the request asks for it (``stream_options={"include_usage": True}``).
The ``openai`` package itself is never imported by Goldloop.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, TypeVar

from goldloop.sdk import tracing as _tracing
from goldloop.sdk.run import Run, snapshot
from goldloop.sdk.tracing import _CURRENT, _begin, _fail, _finish, _make_spec, _reset, _Spec

C = TypeVar("C")

_SKIP_PARAMS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})
_WRAPPED = "__goldloop_wrapped__"


def wrap_openai(client: C) -> C:
    """Trace this OpenAI client's chat completions and responses calls; returns the client."""
    targets = (
        ("chat", "completions", "openai.chat.completions", _ChatStream),
        ("responses", None, "openai.responses", _ResponsesStream),
    )
    for first, second, name, accumulator in targets:
        try:
            resource = getattr(client, first)
            if second is not None:
                resource = getattr(resource, second)
            original = resource.create
        except AttributeError:
            continue  # an older client without this API
        if getattr(original, _WRAPPED, False):
            continue
        spec = _make_spec(None, name, "llm", None, None, None, None, True, True, None)
        # openai's create() is a plain function returning a coroutine on async resources
        if inspect.iscoroutinefunction(original) or type(resource).__name__.startswith("Async"):
            wrapped = _wrap_async(original, spec, accumulator)
        else:
            wrapped = _wrap_sync(original, spec, accumulator)
        setattr(wrapped, _WRAPPED, True)
        resource.create = wrapped
    return client


def _inputs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        k: snapshot(v)
        for k, v in kwargs.items()
        if k not in _SKIP_PARAMS and type(v).__name__ not in ("NotGiven", "Omit")
    }


def _open(spec: _Spec, kwargs: dict[str, Any]) -> Run | None:
    if not _tracing._ENABLED or not _tracing._ensure_configured():
        return None
    try:
        run = _begin(spec, _inputs(kwargs), _CURRENT.get())
        run.provider = "openai"
        model = kwargs.get("model")
        if isinstance(model, str):
            run.model = model
        return run
    except Exception:
        _tracing.log.exception("goldloop: could not start an OpenAI run")
        return None


def _is_stream(kwargs: dict[str, Any], result: Any) -> bool:
    return kwargs.get("stream") is True and not hasattr(result, "model_dump")


def _wrap_sync(original: Any, spec: _Spec, acc: type[_Accumulator]) -> Any:
    @functools.wraps(original)
    def create(*args: Any, **kwargs: Any) -> Any:
        run = _open(spec, kwargs)
        if run is None:
            return original(*args, **kwargs)
        token = _CURRENT.set(run)
        try:
            result = original(*args, **kwargs)
        except BaseException as exc:
            _reset(token)
            _fail(run, exc)
            raise
        _reset(token)
        if _is_stream(kwargs, result):
            return TracedStream(result, run, acc())
        _record(run, result)
        return result

    return create


def _wrap_async(original: Any, spec: _Spec, acc: type[_Accumulator]) -> Any:
    @functools.wraps(original)
    async def create(*args: Any, **kwargs: Any) -> Any:
        run = _open(spec, kwargs)
        if run is None:
            return await original(*args, **kwargs)
        token = _CURRENT.set(run)
        try:
            result = await original(*args, **kwargs)
        except BaseException as exc:
            _reset(token)
            _fail(run, exc)
            raise
        _reset(token)
        if _is_stream(kwargs, result):
            return AsyncTracedStream(result, run, acc())
        _record(run, result)
        return result

    return create


def _get(obj: Any, key: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _set_usage(run: Run, usage: Any) -> None:
    if usage is None:
        return
    in_details = _first(_get(usage, "prompt_tokens_details"), _get(usage, "input_tokens_details"))
    out_details = _first(
        _get(usage, "completion_tokens_details"), _get(usage, "output_tokens_details")
    )
    run.set_usage(
        input_tokens=_first(_get(usage, "prompt_tokens"), _get(usage, "input_tokens")),
        output_tokens=_first(_get(usage, "completion_tokens"), _get(usage, "output_tokens")),
        total_tokens=_get(usage, "total_tokens"),
        cache_read_tokens=_get(in_details, "cached_tokens"),
        reasoning_tokens=_get(out_details, "reasoning_tokens"),
    )


def _record(run: Run, response: Any) -> None:
    """A complete (non-streamed) response: outputs, model, usage; then the run ends."""
    try:
        run.outputs = snapshot(response) if hasattr(response, "model_dump") else None
        if not isinstance(run.outputs, dict):
            run.outputs = {"output": snapshot(response)}
        model = _get(response, "model")
        if isinstance(model, str):
            run.model = model
        _set_usage(run, _get(response, "usage"))
    except Exception:
        _tracing.log.exception("goldloop: could not record an OpenAI response")
    _finish(run, None, None, has_result=False)


class _Accumulator:
    """Collects what a stream says, to record it as one response when the stream ends."""

    def add(self, item: Any) -> None:
        raise NotImplementedError

    def finish(self, run: Run) -> None:
        raise NotImplementedError


class _ChatStream(_Accumulator):
    def __init__(self) -> None:
        self.model: str | None = None
        self.usage: Any = None
        self.choices: dict[int, dict[str, Any]] = {}

    def add(self, chunk: Any) -> None:
        self.model = _get(chunk, "model") or self.model
        self.usage = _get(chunk, "usage") or self.usage
        for choice in _get(chunk, "choices") or ():
            index = _get(choice, "index") or 0
            slot = self.choices.setdefault(
                index, {"index": index, "role": None, "content": [], "tool_calls": {}}
            )
            delta = _get(choice, "delta")
            slot["role"] = _get(delta, "role") or slot["role"]
            text = _get(delta, "content")
            if text:
                slot["content"].append(text)
            for call in _get(delta, "tool_calls") or ():
                at = _get(call, "index") or 0
                into = slot["tool_calls"].setdefault(
                    at, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
                )
                into["id"] = _get(call, "id") or into["id"]
                fn = _get(call, "function")
                into["function"]["name"] += _get(fn, "name") or ""
                into["function"]["arguments"] += _get(fn, "arguments") or ""
            reason = _get(choice, "finish_reason")
            if reason:
                slot["finish_reason"] = reason

    def finish(self, run: Run) -> None:
        choices = []
        for index in sorted(self.choices):
            slot = self.choices[index]
            message: dict[str, Any] = {
                "role": slot["role"] or "assistant",
                "content": "".join(slot["content"]) or None,
            }
            if slot["tool_calls"]:
                message["tool_calls"] = [slot["tool_calls"][k] for k in sorted(slot["tool_calls"])]
            choices.append(
                {"index": index, "message": message, "finish_reason": slot.get("finish_reason")}
            )
        if not run.output_set:
            run.outputs = {"model": self.model, "choices": choices}
        if self.model:
            run.model = self.model
        _set_usage(run, self.usage)


class _ResponsesStream(_Accumulator):
    def __init__(self) -> None:
        self.final: Any = None
        self.text: list[str] = []

    def add(self, event: Any) -> None:
        kind = _get(event, "type") or ""
        if kind == "response.output_text.delta":
            self.text.append(_get(event, "delta") or "")
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.final = _get(event, "response")

    def finish(self, run: Run) -> None:
        if self.final is not None:
            snap = snapshot(self.final)
            if not run.output_set:
                run.outputs = snap if isinstance(snap, dict) else {"output": snap}
            model = _get(self.final, "model")
            if isinstance(model, str):
                run.model = model
            _set_usage(run, _get(self.final, "usage"))
        elif not run.output_set:
            run.outputs = {"output_text": "".join(self.text)}


class _StreamBase:
    def __init__(self, stream: Any, run: Run, acc: _Accumulator) -> None:
        self._stream = stream
        self._run = run
        self._acc = acc
        self._ended = False
        self._items = 0

    def __getattr__(self, name: str) -> Any:  # .response, .close_when_done, …
        return getattr(self._stream, name)

    def _add(self, item: Any) -> None:
        try:
            if self._items == 0:
                self._run.add_event("first_item")
            self._items += 1
            self._acc.add(item)
        except Exception:
            _tracing.log.exception("goldloop: could not read a stream chunk")

    def _end(self, exc: BaseException | None, early: bool = False) -> None:
        if self._ended:
            return
        self._ended = True
        try:
            self._acc.finish(self._run)
            if early:
                self._run.add_metadata(stopped_early=True)
        except Exception:
            _tracing.log.exception("goldloop: could not record an OpenAI stream")
        if exc is not None:
            _fail(self._run, exc)
        else:
            _finish(self._run, None, None, has_result=False)

    def __del__(self) -> None:
        if not getattr(self, "_ended", True):
            self._end(None, early=True)


class TracedStream(_StreamBase):
    """The wrapped client's ``Stream``: iterate it as usual; the run ends with the stream."""

    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        try:
            item = next(self._stream)
        except StopIteration:
            self._end(None)
            raise
        except BaseException as exc:
            self._end(exc)
            raise
        self._add(item)
        return item

    def __enter__(self) -> TracedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._end(None, early=True)


class AsyncTracedStream(_StreamBase):
    """The wrapped async client's ``AsyncStream``."""

    def __aiter__(self) -> AsyncTracedStream:
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self._stream.__anext__()
        except StopAsyncIteration:
            self._end(None)
            raise
        except BaseException as exc:
            self._end(exc)
            raise
        self._add(item)
        return item

    async def __aenter__(self) -> AsyncTracedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self._stream.close()
        finally:
            self._end(None, early=True)
