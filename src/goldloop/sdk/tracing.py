"""Tracing: the ``@traced`` decorator, ``trace()`` and ``context()`` blocks, the current run.

The current run and the per-context defaults live in ``contextvars``, so nesting follows
``await``, ``asyncio.gather`` and tasks; threads need ``goldloop.ContextThreadPoolExecutor`` or
``goldloop.copy_context_wrapper`` (see ``_threads.py``).

Cost when tracing is off: every wrapper first reads the module flag ``_ENABLED`` and calls the
function directly. The flag starts True only so that the first traced call reads the environment
once (``configure()`` from env); after that it holds the configured value.

Nothing here may raise into the application: the bookkeeping around a call is guarded, and the
function's own exceptions are recorded and re-raised unchanged (same object, same traceback).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import traceback
from collections.abc import Callable, Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, TypeVar, overload

from goldloop.sdk.run import KINDS, LEAVES, Run, as_inputs, as_outputs, now_us, snapshot

log = logging.getLogger("goldloop.sdk")

F = TypeVar("F", bound=Callable[..., Any])


class Sink(Protocol):
    def on_start(self, run: Run) -> None: ...
    def on_end(self, run: Run) -> None: ...


_ENABLED = True  # until the first call reads the environment; see the module doc
_SINK: Sink | None = None
_CAPTURE_INPUTS = True
_CAPTURE_OUTPUTS = True


def _capture_defaults(inputs: bool, outputs: bool) -> None:
    global _CAPTURE_INPUTS, _CAPTURE_OUTPUTS
    _CAPTURE_INPUTS, _CAPTURE_OUTPUTS = inputs, outputs


def _set_sink(sink: Sink | None) -> None:
    """Called by configure(): ``None`` turns tracing off."""
    global _ENABLED, _SINK
    _SINK = sink
    _ENABLED = sink is not None


def _ensure_configured() -> bool:
    """First traced call without an explicit configure(): read the environment once."""
    if _SINK is None and _ENABLED:
        from goldloop.sdk.setup import configure_from_env

        configure_from_env()
    return _ENABLED


@dataclass(frozen=True, slots=True)
class Scope:
    """Defaults set by ``goldloop.context(...)`` (and the remote parent from continue_trace)."""

    session_id: str | None = None
    user_id: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] | None = None
    project: str | None = None
    remote_trace_id: str | None = None
    remote_parent_id: str | None = None


_CURRENT: ContextVar[Run | None] = ContextVar("goldloop_current_run", default=None)
_SCOPE: ContextVar[Scope | None] = ContextVar("goldloop_scope", default=None)


def get_current_run() -> Run | None:
    """The run being traced in this context, or ``None`` (also when tracing is off)."""
    return _CURRENT.get()


@dataclass(frozen=True, slots=True)
class _Spec:
    """What the decorator knows before any call."""

    name: str
    kind: str
    tags: tuple[str, ...] | None
    metadata: dict[str, Any] | None
    session_id: str | None
    user_id: str | None
    capture_inputs: bool
    capture_outputs: bool
    reduce: Callable[[list[Any]], Any] | None
    names: tuple[str, ...]  # positional parameter names, when binding is simple
    skip_first: bool  # drop `self` / `cls`
    signature: inspect.Signature | None  # set when binding needs the slow path


def _make_spec(
    fn: Callable[..., Any] | None,
    name: str | None,
    kind: str,
    tags: Iterable[str] | None,
    metadata: dict[str, Any] | None,
    session_id: str | None,
    user_id: str | None,
    capture_inputs: bool,
    capture_outputs: bool,
    reduce: Callable[[list[Any]], Any] | None,
) -> _Spec:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(sorted(KINDS))}; got {kind!r}")
    names: tuple[str, ...] = ()
    skip_first = False
    signature = None
    if fn is not None:
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            sig = None
        if sig is not None:
            params = list(sig.parameters.values())
            skip_first = bool(params) and params[0].name in ("self", "cls")
            simple = all(
                p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                for p in params
            )
            if simple:
                names = tuple(
                    p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                )
            else:
                signature = sig
    return _Spec(
        name=name or getattr(fn, "__name__", None) or "run",
        kind=kind,
        tags=tuple(str(t) for t in tags) if tags else None,
        metadata=snapshot(metadata) if metadata else None,
        session_id=session_id,
        user_id=user_id,
        capture_inputs=capture_inputs,
        capture_outputs=capture_outputs,
        reduce=reduce,
        names=names,
        skip_first=skip_first,
        signature=signature,
    )


def _bind(spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    if spec.signature is None and len(args) <= len(spec.names):
        inputs = {
            n: v if type(v) in LEAVES else snapshot(v)
            for n, v in zip(spec.names, args, strict=False)
        }
        for k, v in kwargs.items():
            inputs[k] = v if type(v) in LEAVES else snapshot(v)
        if spec.skip_first and spec.names:
            inputs.pop(spec.names[0], None)
        return inputs
    sig = spec.signature
    if sig is None:
        return {"args": snapshot(args), **snapshot(kwargs)}
    try:
        bound = sig.bind_partial(*args, **kwargs).arguments
    except TypeError:
        return {"args": snapshot(args), **snapshot(kwargs)}
    inputs = {k: snapshot(v) for k, v in bound.items()}
    if spec.skip_first:
        inputs.pop(next(iter(sig.parameters)), None)
    return inputs


def _begin(
    spec: _Spec, inputs: dict[str, Any] | None, parent: Run | None, recording: bool = True
) -> Run:
    scope = _SCOPE.get()
    if scope is None and parent is None:  # the common root call: nothing to merge
        tags, metadata = spec.tags, spec.metadata
        run = Run(
            spec.name,
            spec.kind,
            None,  # a new trace: the run's own random bits give its id (see Run.trace_id)
            None,
            inputs,
            list(tags) if tags else None,
            dict(metadata) if metadata else None,
            spec.session_id,
            spec.user_id,
            None,
            recording,
        )
        if recording and _SINK is not None:
            _SINK.on_start(run)
        return run
    tags = spec.tags
    metadata = spec.metadata
    session_id = spec.session_id
    user_id = spec.user_id
    project = None
    trace_id: str | None
    parent_id: str | None
    # precedence: this call's values > the innermost context() > the parent run
    if scope is not None:
        if scope.tags:
            tags = scope.tags + tuple(t for t in tags or () if t not in scope.tags)
        if scope.metadata:
            metadata = {**scope.metadata, **(metadata or {})}
        session_id = session_id or scope.session_id
        user_id = user_id or scope.user_id
        project = scope.project
    if parent is not None:
        trace_id, parent_id = parent.trace_id, parent.id
        session_id = session_id or parent.session_id
        user_id = user_id or parent.user_id
        project = project or parent.project
    elif scope is not None and scope.remote_trace_id:
        trace_id, parent_id = scope.remote_trace_id, scope.remote_parent_id
    else:
        trace_id, parent_id = None, None
    run = Run(
        spec.name,
        spec.kind,
        trace_id,
        parent_id,
        inputs,
        list(tags) if tags else None,
        dict(metadata) if metadata else None,
        session_id,
        user_id,
        project,
        recording,
    )
    if recording and _SINK is not None:
        _SINK.on_start(run)
    return run


def _start(spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Run | None:
    """Open a run for a call, or None when tracing turned out to be off; never raises."""
    try:
        if _SINK is None and not _ensure_configured():
            return None
        inputs = _bind(spec, args, kwargs) if spec.capture_inputs and _CAPTURE_INPUTS else None
        return _begin(spec, inputs, _CURRENT.get())
    except Exception:
        log.exception("goldloop: could not start a run (the call goes on untraced)")
        return None


def _finish(run: Run, spec: _Spec | None, result: Any, has_result: bool = True) -> None:
    try:
        if (
            has_result
            and not run.output_set
            and _CAPTURE_OUTPUTS
            and (spec is None or spec.capture_outputs)
        ):
            run.outputs = as_outputs(result)
        run.end_time = now_us()
        sink = _SINK
        if run.recording and sink is not None:
            sink.on_end(run)
    except Exception:
        log.exception("goldloop: could not record the end of a run")


def _fail(run: Run, exc: BaseException) -> None:
    try:
        run.error = {
            "type": type(exc).__qualname__,
            "message": str(exc),
            "stacktrace": "".join(traceback.format_exception(exc)),
        }
    except Exception:
        run.error = {"type": type(exc).__qualname__, "message": "<unprintable>", "stacktrace": ""}
    _finish(run, None, None, has_result=False)


def _reset(token: Token[Run | None]) -> None:
    try:  # noqa: SIM105 - cheaper than contextlib.suppress on the hot path
        _CURRENT.reset(token)
    except ValueError:  # token from another context (e.g. a generator finalised elsewhere)
        pass


def _stream_outputs(run: Run, spec: _Spec, items: list[Any], result: Any) -> None:
    if run.output_set or not spec.capture_outputs or not _CAPTURE_OUTPUTS:
        return
    try:
        value = spec.reduce(items) if spec.reduce is not None else items
        outputs = as_outputs(value) if spec.reduce is not None else {"output": value}
        if result is not None:
            outputs["return"] = snapshot(result)
        run.outputs = outputs
    except Exception:
        log.exception("goldloop: reduce= failed; recording the raw items")
        run.outputs = {"output": items}


def _wrap_sync(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _ENABLED:
            return fn(*args, **kwargs)
        # _start() inlined: this is the hot path of every traced call
        try:
            if _SINK is None and not _ensure_configured():
                return fn(*args, **kwargs)
            inputs = _bind(spec, args, kwargs) if spec.capture_inputs and _CAPTURE_INPUTS else None
            run = _begin(spec, inputs, _CURRENT.get())
        except Exception:
            log.exception("goldloop: could not start a run (the call goes on untraced)")
            return fn(*args, **kwargs)
        token = _CURRENT.set(run)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            _reset(token)
            _fail(run, exc)
            raise
        _reset(token)
        _finish(run, spec, result)
        return result

    return wrapper


def _wrap_async(fn: Callable[..., Any], spec: _Spec) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _ENABLED:
            return await fn(*args, **kwargs)
        run = _start(spec, args, kwargs)
        if run is None:
            return await fn(*args, **kwargs)
        token = _CURRENT.set(run)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            _reset(token)
            _fail(run, exc)
            raise
        _reset(token)
        _finish(run, spec, result)
        return result

    return wrapper


@overload
def traced(fn: F) -> F: ...
@overload
def traced(
    fn: None = None,
    *,
    name: str | None = None,
    kind: str = "chain",
    tags: Iterable[str] | None = None,
    metadata: dict[str, Any] | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    capture_inputs: bool = True,
    capture_outputs: bool = True,
    reduce: Callable[[list[Any]], Any] | None = None,
) -> Callable[[F], F]: ...
def traced(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    kind: str = "chain",
    tags: Iterable[str] | None = None,
    metadata: dict[str, Any] | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    capture_inputs: bool = True,
    capture_outputs: bool = True,
    reduce: Callable[[list[Any]], Any] | None = None,
) -> Any:
    """Trace every call of a function as a run: ``@traced`` or ``@traced(kind="tool", ...)``.

    Works on plain and ``async`` functions, generators and async generators (the yielded items
    are collected and recorded when the stream ends, also when the consumer stops early; pass
    ``reduce=`` to turn the list of items into one output, e.g. ``"".join``).
    """

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(sorted(KINDS))}; got {kind!r}")

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        spec = _make_spec(
            f,
            name,
            kind,
            tags,
            metadata,
            session_id,
            user_id,
            capture_inputs,
            capture_outputs,
            reduce,
        )
        if inspect.isasyncgenfunction(f) or inspect.isgeneratorfunction(f):
            from goldloop.sdk.streams import wrap_stream

            return wrap_stream(f, spec)
        if inspect.iscoroutinefunction(f):
            return _wrap_async(f, spec)
        return _wrap_sync(f, spec)

    return decorate if fn is None else decorate(fn)


class trace:
    """A run around a block: ``with goldloop.trace("search", kind="tool", inputs={...}) as run``.

    Also ``async with``. Exceptions are recorded and propagate unchanged. Call
    ``run.set_output(...)`` to record an output. With tracing off you still get a ``Run`` (ids
    and setters work) but nothing is recorded and it is not the current run.
    """

    __slots__ = ("_run", "_spec", "_token", "inputs")

    def __init__(
        self,
        name: str,
        *,
        kind: str = "chain",
        inputs: Any = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
    ) -> None:
        self._spec = _make_spec(
            None, name, kind, tags, metadata, session_id, user_id, True, True, None
        )
        self.inputs = inputs
        self._run: Run | None = None
        self._token: Token[Run | None] | None = None

    def __enter__(self) -> Run:
        enabled = _ENABLED and _ensure_configured()
        try:
            inputs = as_inputs(self.inputs) if self.inputs is not None else None
            run = _begin(self._spec, inputs, _CURRENT.get() if enabled else None, enabled)
        except Exception:
            log.exception("goldloop: could not start a run")
            run = Run(self._spec.name, self._spec.kind, None, None, None, None, None,
                      None, None, None, recording=False)  # fmt: skip
        self._run = run
        if run.recording:
            self._token = _CURRENT.set(run)
        return run

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        run = self._run
        if self._token is not None:
            _reset(self._token)
            self._token = None
        if run is None:
            return
        if exc is not None:
            _fail(run, exc)
        else:
            _finish(run, self._spec, None, has_result=False)

    async def __aenter__(self) -> Run:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class context:
    """Defaults for every run started inside the block (nests; inner values win, tags add up)."""

    __slots__ = ("_scope", "_token")

    def __init__(
        self,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
        project: str | None = None,
    ) -> None:
        outer = _SCOPE.get() or Scope()
        new_tags = tuple(str(t) for t in tags or ())
        self._scope = Scope(
            session_id=session_id or outer.session_id,
            user_id=user_id or outer.user_id,
            tags=outer.tags + tuple(t for t in new_tags if t not in outer.tags),
            metadata={**(outer.metadata or {}), **snapshot(metadata or {})} or None,
            project=project or outer.project,
            remote_trace_id=outer.remote_trace_id,
            remote_parent_id=outer.remote_parent_id,
        )
        self._token: Token[Scope | None] | None = None

    def __enter__(self) -> None:
        self._token = _SCOPE.set(self._scope)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            with contextlib.suppress(ValueError):
                _SCOPE.reset(self._token)
            self._token = None


def _enter_remote_parent(trace_id: str, parent_id: str) -> Token[Scope | None]:
    outer = _SCOPE.get() or Scope()
    scope = Scope(
        session_id=outer.session_id,
        user_id=outer.user_id,
        tags=outer.tags,
        metadata=outer.metadata,
        project=outer.project,
        remote_trace_id=trace_id,
        remote_parent_id=parent_id,
    )
    return _SCOPE.set(scope)


def _current_scope() -> Scope | None:
    return _SCOPE.get()
