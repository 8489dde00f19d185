"""Which LangSmith SDK calls each passing test made: the source of docs/langsmith.md's table.

Off unless ``GOLDLOOP_SDK_CALLS_DIR`` names a directory (``.ci/run`` sets it). Then, before any
test module is imported, the SDK's public surface is wrapped: every public method of
``langsmith.Client``, ``langsmith.AsyncClient``, ``RunTree`` and the generated thread resource
(``client.threads``), and the module-level ``traceable``, ``trace``, ``evaluate`` and
``aevaluate``. A call a test makes is recorded under that test. Only the test's own calls count:
calls the SDK makes inside another recorded call (``evaluate`` creating a project), or from its
own threads (the tracing queue, ``evaluate``'s workers), are not recorded, so a call is listed
only where a test drives it directly and then checks its effect.

Each passing test appends one JSON line ``{"test", "backend", "sdk", "calls"}`` to a file of its
own process in that directory; ``tests/langsmith_compat.py`` turns the lines into the table.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import inspect
import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ENV = "GOLDLOOP_SDK_CALLS_DIR"
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("sdk_call_depth", default=0)
_current: set[str] = set()


def _record(label: str | None) -> bool:
    """Record ``label`` for the running test; True when this is the test's own, outermost call.
    ``None``: plumbing, never recorded (but what it calls is inside it, so not recorded either)."""
    if label is None or _depth.get() or threading.current_thread() is not threading.main_thread():
        return False
    _current.add(label)
    return True


def _wrap(label: str | None, fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_call(*args: Any, **kwargs: Any) -> Any:
            _record(label)
            token = _depth.set(_depth.get() + 1)
            try:
                return await fn(*args, **kwargs)
            finally:
                _depth.reset(token)

        return async_call

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator_call(*args: Any, **kwargs: Any) -> Iterator[Any]:
            _record(label)
            token = _depth.set(_depth.get() + 1)
            try:
                gen = fn(*args, **kwargs)
            finally:
                _depth.reset(token)
            # The body runs as the caller iterates: inner calls happen then, one level down.
            while True:
                token = _depth.set(_depth.get() + 1)
                try:
                    item = next(gen)
                except StopIteration:
                    return
                finally:
                    _depth.reset(token)
                yield item

        return generator_call

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        _record(label)
        token = _depth.set(_depth.get() + 1)
        try:
            return fn(*args, **kwargs)
        finally:
            _depth.reset(token)

    return call


# Plumbing rather than features, wrapped but never recorded (nor what they call, e.g. flush()'s
# flush_compressed_traces): closing or flushing a client, raw requests, and ``info``, which the
# SDK itself calls (from a task it schedules) before using a newer resource.
NOT_FEATURES = frozenset({"close", "aclose", "cleanup", "flush", "info", "request_with_retries"})


def _wrap_class(cls: type, prefix: str) -> None:
    for name, attr in list(vars(cls).items()):
        if name.startswith(("_", "model_")) or not inspect.isfunction(attr):
            continue  # properties, static data, private helpers and pydantic's hooks stay as is
        label = None if name in NOT_FEATURES else f"{prefix}.{name}"
        setattr(cls, name, _wrap(label, attr))


def install() -> bool:
    """Wrap the SDK's public surface; a no-op (False) unless ``GOLDLOOP_SDK_CALLS_DIR`` is set."""
    if not os.environ.get(ENV):
        return False
    import langsmith
    import langsmith.evaluation
    import langsmith.run_helpers
    import langsmith.run_trees

    _wrap_class(langsmith.Client, "Client")
    _wrap_class(langsmith.AsyncClient, "AsyncClient")
    _wrap_class(langsmith.run_trees.RunTree, "RunTree")
    # The generated (v2) resources, reached as ``client.threads...`` from either client.
    for where in (
        "langsmith.resources.threads.threads",
        "langsmith._openapi_client.resources.threads",
    ):
        try:  # the 0.15 line, then the 0.11 line
            module = importlib.import_module(where)
        except ImportError:
            continue
        _wrap_class(module.AsyncThreadsResource, "client.threads")
        break
    traceable = _wrap("traceable", langsmith.run_helpers.traceable)
    evaluate = _wrap("evaluate", langsmith.evaluation.evaluate)
    aevaluate = _wrap("aevaluate", langsmith.evaluation.aevaluate)
    trace_cls = langsmith.run_helpers.trace
    original_init = trace_cls.__init__

    @functools.wraps(original_init)
    def trace_init(self: Any, *args: Any, **kwargs: Any) -> None:
        _record("trace")
        original_init(self, *args, **kwargs)

    trace_cls.__init__ = trace_init  # type: ignore[method-assign]
    for module in (langsmith, langsmith.run_helpers):
        module.traceable = traceable  # type: ignore[attr-defined]
    for module in (langsmith, langsmith.evaluation):
        module.evaluate = evaluate  # type: ignore[attr-defined]
        module.aevaluate = aevaluate  # type: ignore[attr-defined]
    return True


def start_test() -> None:
    _current.clear()


def finish_test(item: pytest.Item) -> None:
    """Append the calls a passing LangSmith compatibility test made (``test_langsmith_*.py``;
    other tests that happen to use the SDK, and tests that made no call, write nothing)."""
    if not _current or not item.path.name.startswith("test_langsmith_"):
        _current.clear()
        return
    import langsmith

    callspec = getattr(item, "callspec", None)
    backend = callspec.params.get("backend", "sqlite") if callspec else "sqlite"
    line = ".".join(langsmith.__version__.split(".")[:2])
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    folder = Path(os.environ[ENV])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"sdk-{line}-{worker}.jsonl"
    record = {
        "test": item.nodeid.split("[")[0],
        "backend": backend,
        "sdk": line,
        "calls": sorted(_current),
    }
    with path.open("a") as out:
        out.write(json.dumps(record) + "\n")
    _current.clear()
