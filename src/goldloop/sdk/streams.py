"""``@traced`` for generators and async generators.

The wrapper drives the wrapped generator step by step, so ``send``/``throw``/``close`` (and
their async forms) reach it unchanged. The run is the current run only while the generator's own
code runs, never while the consumer holds an item, so the consumer's runs are not nested under
the stream by mistake. Items are snapshotted as they pass; the run ends when the stream is
exhausted, fails, or is closed early by the consumer (``metadata.stopped_early = true``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

from goldloop.sdk import tracing as _tracing
from goldloop.sdk.run import Run, snapshot
from goldloop.sdk.tracing import _CURRENT, _fail, _finish, _reset, _Spec, _start, _stream_outputs


def wrap_stream(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(fn):
        return _wrap_async_generator(fn, spec)
    return _wrap_generator(fn, spec)


def _first_item(run: Run) -> None:
    run.add_event("first_item")


def _end(run: Run, spec: _Spec, items: list[Any], result: Any, stopped_early: bool) -> None:
    try:
        _stream_outputs(run, spec, items, result)
        if stopped_early:
            run.add_metadata(stopped_early=True)
    except Exception:
        _tracing.log.exception("goldloop: could not record a stream's output")
    _finish(run, spec, None, has_result=False)


def _end_error(run: Run, spec: _Spec, items: list[Any], exc: BaseException) -> None:
    try:
        _stream_outputs(run, spec, items, None)
    except Exception:
        _tracing.log.exception("goldloop: could not record a stream's output")
    _fail(run, exc)


def _wrap_generator(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _tracing._ENABLED:
            return (yield from fn(*args, **kwargs))
        run = _start(spec, args, kwargs)
        if run is None:
            return (yield from fn(*args, **kwargs))
        return (yield from _drive(fn, args, kwargs, run, spec))

    return wrapper


def _drive(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], run: Run, spec: _Spec
) -> Generator[Any, Any, Any]:
    token = _CURRENT.set(run)
    try:
        gen = fn(*args, **kwargs)
    except BaseException as exc:
        _reset(token)
        _fail(run, exc)
        raise
    _reset(token)
    items: list[Any] = []
    capture = spec.capture_outputs
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        token = _CURRENT.set(run)
        try:
            if to_throw is not None:
                thrown, to_throw = to_throw, None
                item = gen.throw(thrown)
            else:
                item = gen.send(to_send)
        except StopIteration as stop:
            _reset(token)
            _end(run, spec, items, stop.value, stopped_early=False)
            return stop.value
        except BaseException as exc:
            _reset(token)
            _end_error(run, spec, items, exc)
            raise
        _reset(token)
        if not items:
            _first_item(run)
        if capture:
            items.append(snapshot(item))
        else:
            items.append(None)
        try:
            to_send = yield item
        except GeneratorExit:
            token = _CURRENT.set(run)
            try:
                gen.close()
            except BaseException as exc:
                _reset(token)
                _end_error(run, spec, items, exc)
                raise
            _reset(token)
            _end(run, spec, items, None, stopped_early=True)
            raise
        except BaseException as exc:
            to_throw, to_send = exc, None


def _wrap_async_generator(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        run = _start(spec, args, kwargs) if _tracing._ENABLED else None
        token = _CURRENT.set(run) if run is not None else None
        try:
            agen = fn(*args, **kwargs)
        except BaseException as exc:
            if token is not None and run is not None:
                _reset(token)
                _fail(run, exc)
            raise
        if token is not None:
            _reset(token)
        items: list[Any] = []
        capture = spec.capture_outputs
        to_send: Any = None
        to_throw: BaseException | None = None
        while True:
            token = _CURRENT.set(run) if run is not None else None
            try:
                if to_throw is not None:
                    thrown, to_throw = to_throw, None
                    item = await agen.athrow(thrown)
                else:
                    item = await agen.asend(to_send)
            except StopAsyncIteration:
                if run is not None and token is not None:
                    _reset(token)
                    _end(run, spec, items, None, stopped_early=False)
                return
            except BaseException as exc:
                if run is not None and token is not None:
                    _reset(token)
                    _end_error(run, spec, items, exc)
                raise
            if run is not None:
                if token is not None:
                    _reset(token)
                if not items:
                    _first_item(run)
                items.append(snapshot(item) if capture else None)
            try:
                to_send = yield item
            except GeneratorExit:
                token = _CURRENT.set(run) if run is not None else None
                try:
                    await agen.aclose()
                except BaseException as exc:
                    if run is not None and token is not None:
                        _reset(token)
                        _end_error(run, spec, items, exc)
                    raise
                if run is not None and token is not None:
                    _reset(token)
                    _end(run, spec, items, None, stopped_early=True)
                raise
            except BaseException as exc:
                to_throw, to_send = exc, None

    return wrapper
