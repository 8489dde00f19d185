"""The evaluator protocol, the adapter for plain functions, and safe invocation."""

from __future__ import annotations

import asyncio
import inspect
import math
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from goldloop.evaluation._types import EvaluationResult, EvaluatorInfo, ExampleData, RunData

__all__ = [
    "FUNCTION_PARAMETERS",
    "Evaluator",
    "FunctionEvaluator",
    "aevaluate_run",
    "as_evaluator",
    "coerce_results",
    "evaluate_run",
]

FUNCTION_PARAMETERS = (
    "run",
    "example",
    "inputs",
    "outputs",
    "reference_outputs",
    "metadata",
    "child_runs",
)
"""Parameter names a plain evaluator function may declare, in any order and any subset."""

_RESULT_FIELDS = {"key", "score", "value", "comment"}


class Evaluator:
    """Base class of every evaluator, built-in or user-written.

    Subclasses set ``name`` and ``version`` and implement :meth:`evaluate` (sync) and/or
    :meth:`aevaluate` (async); each defaults to running the other.
    """

    name: str = "evaluator"
    version: str = "1"

    def info(self) -> EvaluatorInfo:
        return EvaluatorInfo(self.name, self.version)

    def evaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        if type(self).aevaluate is Evaluator.aevaluate:
            raise NotImplementedError(
                f"{type(self).__name__} implements neither evaluate nor aevaluate"
            )
        return _run_coroutine(self.aevaluate(run, example))

    async def aevaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        return await asyncio.to_thread(self.evaluate, run, example)

    def result(self, key: str | None = None, **fields: Any) -> EvaluationResult:
        """A result of this evaluator (its name as key unless given, its provenance set)."""
        return EvaluationResult(key=key or self.name, evaluator=self.info(), **fields)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} v{self.version}>"


def _run_coroutine(coro: Awaitable[list[EvaluationResult]]) -> list[EvaluationResult]:
    """Run a coroutine from sync code, also when this thread already has a running loop."""

    async def wrap() -> list[EvaluationResult]:
        return await coro

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wrap())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(wrap())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name="goldloop-evaluator")
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    result: list[EvaluationResult] = box["value"]
    return result


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        f = float(value)
        if math.isnan(f) or math.isinf(f):
            raise ValueError(f"a score must be finite, got {value!r}")
        return f
    return None


def _from_mapping(item: Mapping[str, Any], default_key: str) -> list[EvaluationResult]:
    if "results" in item and isinstance(item["results"], list | tuple):
        return coerce_results(item["results"], default_key)
    if _RESULT_FIELDS & set(item):
        score = item.get("score")
        num = _number(score) if score is not None else None
        if score is not None and num is None:
            raise TypeError(f"score must be a number or bool, got {type(score).__name__}")
        comment = item.get("comment")
        return [
            EvaluationResult(
                key=str(item.get("key") or default_key),
                score=num,
                value=item.get("value"),
                comment=None if comment is None else str(comment),
                extra={k: v for k, v in item.items() if k not in _RESULT_FIELDS},
            )
        ]
    # {"precision": 0.5, "label": "good"}: one result per entry
    out: list[EvaluationResult] = []
    for key, value in item.items():
        num = _number(value)
        out.append(
            EvaluationResult(key=str(key), score=num)
            if num is not None
            else EvaluationResult(key=str(key), value=value)
        )
    return out


def coerce_results(raw: Any, default_key: str) -> list[EvaluationResult]:
    """Turn what an evaluator function returned into results.

    ``bool`` and numbers become a score, a string becomes a value, ``None`` means "nothing to
    report", a mapping is one result (when it has any of ``key/score/value/comment``) or one
    result per entry, a list is one result per item, and ``{"results": [...]}`` is a list.
    """
    if raw is None:
        return []
    if isinstance(raw, EvaluationResult):
        return [raw]
    num = _number(raw)
    if num is not None:
        return [EvaluationResult(key=default_key, score=num)]
    if isinstance(raw, str):
        return [EvaluationResult(key=default_key, value=raw)]
    if isinstance(raw, Mapping):
        return _from_mapping(raw, default_key)
    if isinstance(raw, list | tuple):
        out: list[EvaluationResult] = []
        for item in raw:
            out.extend(coerce_results(item, default_key))
        return out
    raise TypeError(
        f"an evaluator returned {type(raw).__name__}; return a bool, number, str, dict, "
        "EvaluationResult or a list of them"
    )


class FunctionEvaluator(Evaluator):
    """Adapts a plain function (sync or async) whose parameters are named from
    :data:`FUNCTION_PARAMETERS`, e.g. ``def correct(outputs, reference_outputs) -> bool``."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, version: str = "1"
    ) -> None:
        self.fn = fn
        self.name = name or getattr(fn, "__name__", None) or type(fn).__name__
        self.version = version
        self.is_async = inspect.iscoroutinefunction(fn) or (
            not inspect.isroutine(fn) and inspect.iscoroutinefunction(type(fn).__call__)
        )
        self._wanted, self._var_kw = self._parameters(fn)

    def _parameters(self, fn: Callable[..., Any]) -> tuple[list[str], bool]:
        sig = inspect.signature(fn)
        wanted: list[str] = []
        var_kw = False
        for p in sig.parameters.values():
            if p.kind is p.VAR_KEYWORD:
                var_kw = True
            elif p.kind is p.VAR_POSITIONAL:
                continue
            elif p.name in FUNCTION_PARAMETERS:
                if p.kind is p.POSITIONAL_ONLY:
                    raise TypeError(
                        f"evaluator {self.name!r}: {p.name!r} must not be positional-only"
                    )
                wanted.append(p.name)
            elif p.default is p.empty:
                raise TypeError(
                    f"evaluator {self.name!r} has parameter {p.name!r}; name parameters from "
                    f"{', '.join(FUNCTION_PARAMETERS)}"
                )
        return wanted, var_kw

    def _arguments(self, run: RunData, example: ExampleData | None) -> dict[str, Any]:
        available: dict[str, Any] = {
            "run": run,
            "example": example,
            "inputs": run.inputs if run.inputs else (example.inputs if example else {}),
            "outputs": run.outputs,
            "reference_outputs": example.outputs if example else None,
            "metadata": example.metadata if example else {},
            "child_runs": run.child_runs,
        }
        names: Sequence[str] = FUNCTION_PARAMETERS if self._var_kw else self._wanted
        return {n: available[n] for n in names}

    def evaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        raw = self.fn(**self._arguments(run, example))
        if inspect.isawaitable(raw):
            raw = _run_coroutine(_await(raw))
        return coerce_results(raw, self.name)

    async def aevaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        if self.is_async:
            return coerce_results(await self.fn(**self._arguments(run, example)), self.name)
        return await asyncio.to_thread(self.evaluate, run, example)


async def _await(value: Awaitable[Any]) -> Any:
    return await value


def as_evaluator(obj: Any) -> Evaluator:
    """An :class:`Evaluator` as is, a callable adapted by :class:`FunctionEvaluator`."""
    if isinstance(obj, Evaluator):
        return obj
    if callable(obj):
        return FunctionEvaluator(obj)
    raise TypeError(f"not an evaluator: {obj!r}")


def _error_result(evaluator: Evaluator, exc: BaseException) -> EvaluationResult:
    message = str(exc).splitlines()[0][:500] if str(exc) else ""
    return EvaluationResult(
        key=evaluator.name,
        evaluator=evaluator.info(),
        error=f"{type(exc).__name__}: {message}" if message else type(exc).__name__,
    )


def _finish(evaluator: Evaluator, results: Sequence[EvaluationResult]) -> list[EvaluationResult]:
    info = evaluator.info()
    return [r.with_evaluator(info) for r in results]


def evaluate_run(
    evaluator: Evaluator, run: RunData, example: ExampleData | None = None
) -> list[EvaluationResult]:
    """Run one evaluator; an exception becomes an error result instead of propagating."""
    try:
        return _finish(evaluator, evaluator.evaluate(run, example))
    except Exception as exc:
        return [_error_result(evaluator, exc)]


async def aevaluate_run(
    evaluator: Evaluator, run: RunData, example: ExampleData | None = None
) -> list[EvaluationResult]:
    """Async :func:`evaluate_run`."""
    try:
        return _finish(evaluator, await evaluator.aevaluate(run, example))
    except Exception as exc:
        return [_error_result(evaluator, exc)]
