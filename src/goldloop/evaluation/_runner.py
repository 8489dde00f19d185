"""The experiment runner: ``goldloop.evaluate(target, data, evaluators, ...)``.

Each (example, repetition) runs the target inside a traced root run (kind ``chain``) in its
own trace. A collector placed in front of the SDK's exporter keeps a copy of every run of
those traces, so evaluators see the whole tree (tool calls included) without a round trip to
the server; the exporter, when tracing is configured, still sends them to the experiment's
project. One failing example never stops the experiment: its error is recorded and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from goldloop.domain.comparability import cluster_of, reference_fingerprint
from goldloop.evaluation._experiment_io import (
    fetch_dataset,
    register_experiment,
    upload_enabled,
    upload_results,
)
from goldloop.evaluation._protocol import Evaluator, aevaluate_run, as_evaluator, evaluate_run
from goldloop.evaluation._results import ExperimentResults, ExperimentRow
from goldloop.evaluation._types import ExampleData, RunData
from goldloop.sdk import tracing as _tracing
from goldloop.sdk.run import Run

__all__ = ["aevaluate", "evaluate"]

_INSTALL_LOCK = threading.Lock()
_installed: dict[str, Any] = {"collector": None, "users": 0, "saved": (None, True)}


class _Collector:
    """An SDK sink that copies the runs of watched traces and passes everything on."""

    def __init__(self, downstream: Any) -> None:
        self.downstream = downstream
        self._lock = threading.Lock()
        self._traces: dict[str, list[dict[str, Any]]] = {}

    def watch(self, trace_id: str) -> None:
        with self._lock:
            self._traces[trace_id] = []

    def take(self, trace_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return self._traces.pop(trace_id, [])

    def on_start(self, run: Run) -> None:
        if self.downstream is not None:
            self.downstream.on_start(run)

    def on_end(self, run: Run) -> None:
        with self._lock:
            items = self._traces.get(run.trace_id)
            if items is not None:
                items.append(run.to_item())
        if self.downstream is not None:
            self.downstream.on_end(run)


@contextlib.contextmanager
def _collecting() -> Iterator[_Collector]:
    """Install the collector as the SDK's sink while experiments run (tracing is on for them
    even when the SDK is not configured to send anything). Experiments running at the same
    time share one collector; the SDK's own sink is back when the last one ends."""
    _tracing._ensure_configured()
    with _INSTALL_LOCK:
        if _installed["users"] == 0:
            old_sink, old_enabled = _tracing._SINK, _tracing._ENABLED
            _installed["saved"] = (old_sink, old_enabled)
            _installed["collector"] = _Collector(old_sink if old_enabled else None)
            _tracing._set_sink(_installed["collector"])
        _installed["users"] += 1
        collector: _Collector = _installed["collector"]
    try:
        yield collector
    finally:
        with _INSTALL_LOCK:
            _installed["users"] -= 1
            if _installed["users"] == 0:
                _tracing._SINK, _tracing._ENABLED = _installed["saved"]
                _installed["collector"] = None


def _examples(
    data: Any, as_of: str | int | None
) -> tuple[list[ExampleData], str | None, int | None]:
    if isinstance(data, str):
        return fetch_dataset(data, as_of)
    if isinstance(data, Mapping):
        raise TypeError("data must be a dataset name or an iterable of examples")
    out = []
    for item in data:
        out.append(item if isinstance(item, ExampleData) else ExampleData.from_dict(item))
    return out, None, None


def _call_style(target: Callable[..., Any]) -> str:
    """``dict``: target(inputs); ``kwargs``: target(**inputs)."""
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return "dict"
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) == 1 and not any(p.kind is p.VAR_KEYWORD for p in params):
        return "dict"
    return "kwargs"


def _is_async(target: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(target) or (
        not inspect.isroutine(target) and inspect.iscoroutinefunction(type(target).__call__)
    )


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.done = total, enabled, 0
        self._lock = threading.Lock()

    def tick(self) -> None:
        with self._lock:
            self.done += 1
            if self.enabled:
                width = 30
                filled = width * self.done // max(self.total, 1)
                sys.stderr.write(
                    f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
                )
                if self.done == self.total:
                    sys.stderr.write("\n")
                sys.stderr.flush()


class _Experiment:
    def __init__(
        self,
        target: Callable[..., Any],
        data: Any,
        evaluators: Sequence[Any],
        *,
        repetitions: int,
        experiment_prefix: str | None,
        metadata: Mapping[str, Any] | None,
        as_of: str | int | None,
    ) -> None:
        if repetitions < 1:
            raise ValueError("repetitions must be at least 1")
        self.target = target
        self.style = _call_style(target)
        self.evaluators: list[Evaluator] = [as_evaluator(e) for e in evaluators]
        self.examples, self.dataset, self.version = _examples(data, as_of)
        self.repetitions = repetitions
        name = getattr(target, "__name__", None) or type(target).__name__
        self.name = f"{experiment_prefix or name}-{uuid.uuid4().hex[:8]}"
        self.metadata = dict(metadata or {})
        self.jobs = [
            (i, ex, rep) for i, ex in enumerate(self.examples) for rep in range(repetitions)
        ]

    def key(self, index: int, example: ExampleData) -> str:
        return example.id if example.id is not None else f"#{index}"

    def run_metadata(self, index: int, example: ExampleData, rep: int) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "experiment": self.name,
            "example_id": self.key(index, example),
            "repetition": rep,
            # what the server's comparisons need to tell an edited reference from a regression
            "reference_hash": reference_fingerprint(example.outputs),
        }
        cluster = cluster_of(example.metadata, example.lineage)
        if cluster is not None:
            meta["cluster"] = cluster
        if self.dataset is not None:
            meta.update(dataset=self.dataset, dataset_version=self.version)
        return meta

    def reference(self, example: ExampleData) -> str | None:
        """The dataset example a root run links to (examples read from the server only)."""
        if self.dataset is None or example.id is None or len(example.id) > 36:
            return None
        return example.id

    def start(self, upload: bool | None) -> bool:
        """Decide whether the experiment goes to the server and, if so, register it there
        (its runs then land in an experiment from the first one)."""
        _tracing._ensure_configured()
        if not upload_enabled(upload):
            return False
        register_experiment(
            self.name,
            dataset=self.dataset,
            dataset_version=self.version,
            repetitions=self.repetitions,
            evaluators=[ev.name for ev in self.evaluators],
            metadata=self.metadata,
        )
        return True

    def call_args(self, example: ExampleData) -> tuple[tuple[Any, ...], dict[str, Any]]:
        inputs = dict(example.inputs)
        return ((inputs,), {}) if self.style == "dict" else ((), inputs)

    def row(
        self,
        collector: _Collector,
        root: Run,
        index: int,
        example: ExampleData,
        rep: int,
        output: Any,
        error: str | None,
    ) -> ExperimentRow:
        items = collector.take(root.trace_id)
        try:
            run = RunData.from_trace(items, root_id=root.id)
        except ValueError:
            run = RunData(inputs=dict(example.inputs), outputs=output, id=root.id,
                          trace_id=root.trace_id)  # fmt: skip
        return ExperimentRow(
            example,
            self.key(index, example),
            rep,
            run,
            error,
            reference_hash=reference_fingerprint(example.outputs),
        )

    def results(self, rows: list[ExperimentRow], wall_s: float) -> ExperimentResults:
        position = {id(ex): i for i, ex in enumerate(self.examples)}
        rows.sort(key=lambda r: (position[id(r.example)], r.repetition))
        return ExperimentResults(
            experiment=self.name,
            rows=rows,
            dataset=self.dataset,
            dataset_version=self.version,
            repetitions=self.repetitions,
            metadata=self.metadata,
            wall_s=wall_s,
        )


def _error_text(exc: BaseException) -> str:
    text = str(exc).splitlines()[0][:500] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def evaluate(
    target: Callable[..., Any],
    data: str | Iterable[ExampleData | Mapping[str, Any]],
    evaluators: Sequence[Evaluator | Callable[..., Any]] = (),
    *,
    max_concurrency: int = 8,
    repetitions: int = 1,
    experiment_prefix: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    as_of: str | int | None = None,
    upload: bool | None = None,
    progress: bool | None = None,
) -> ExperimentResults:
    """Run ``target`` on every example (``repetitions`` times), score each run with
    ``evaluators``, and return the results. See docs/experiments.md."""
    if _is_async(target):
        return asyncio.run(
            aevaluate(
                target, data, evaluators, max_concurrency=max_concurrency,
                repetitions=repetitions, experiment_prefix=experiment_prefix,
                metadata=metadata, as_of=as_of, upload=upload, progress=progress,
            )
        )  # fmt: skip
    exp = _Experiment(
        target, data, evaluators, repetitions=repetitions,
        experiment_prefix=experiment_prefix, metadata=metadata, as_of=as_of,
    )  # fmt: skip
    uploading = exp.start(upload)
    bar = _Progress(len(exp.jobs), sys.stderr.isatty() if progress is None else progress)
    started = time.perf_counter()
    rows: list[ExperimentRow] = []
    lock = threading.Lock()
    with _collecting() as collector:

        def job(index: int, example: ExampleData, rep: int) -> None:
            output: Any = None
            error: str | None = None
            with _tracing.context(project=exp.name, metadata=exp.run_metadata(index, example, rep)):
                args, kwargs = exp.call_args(example)
                try:
                    with _tracing.trace(
                        getattr(target, "__name__", "target"), inputs=dict(example.inputs)
                    ) as root:
                        collector.watch(root.trace_id)
                        root.reference_example_id = exp.reference(example)
                        output = target(*args, **kwargs)
                        root.set_output(output)
                except Exception as exc:
                    error = _error_text(exc)
            row = exp.row(collector, root, index, example, rep, output, error)
            for ev in exp.evaluators:
                row.results.extend(evaluate_run(ev, row.run, example))
            with lock:
                rows.append(row)
            bar.tick()

        with ThreadPoolExecutor(max_workers=max_concurrency) as pool:
            for fut in [pool.submit(job, *j) for j in exp.jobs]:
                fut.result()
    results = exp.results(rows, time.perf_counter() - started)
    if uploading:
        upload_results(results)
    return results


async def aevaluate(
    target: Callable[..., Any],
    data: str | Iterable[ExampleData | Mapping[str, Any]],
    evaluators: Sequence[Evaluator | Callable[..., Any]] = (),
    *,
    max_concurrency: int = 8,
    repetitions: int = 1,
    experiment_prefix: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    as_of: str | int | None = None,
    upload: bool | None = None,
    progress: bool | None = None,
) -> ExperimentResults:
    """Async :func:`evaluate`: async targets and evaluators run on the event loop (at most
    ``max_concurrency`` at a time), sync ones in threads."""
    exp = await asyncio.to_thread(
        _Experiment, target, data, evaluators, repetitions=repetitions,
        experiment_prefix=experiment_prefix, metadata=metadata, as_of=as_of,
    )  # fmt: skip
    uploading = await asyncio.to_thread(exp.start, upload)
    bar = _Progress(len(exp.jobs), sys.stderr.isatty() if progress is None else progress)
    started = time.perf_counter()
    gate = asyncio.Semaphore(max_concurrency)
    is_async = _is_async(target)

    async def job(
        collector: _Collector, index: int, example: ExampleData, rep: int
    ) -> ExperimentRow:
        async with gate:
            output: Any = None
            error: str | None = None
            with _tracing.context(project=exp.name, metadata=exp.run_metadata(index, example, rep)):
                args, kwargs = exp.call_args(example)
                try:
                    async with _tracing.trace(
                        getattr(target, "__name__", "target"), inputs=dict(example.inputs)
                    ) as root:
                        collector.watch(root.trace_id)
                        root.reference_example_id = exp.reference(example)
                        if is_async:
                            output = await target(*args, **kwargs)
                        else:  # to_thread carries the context (the current run) along
                            output = await asyncio.to_thread(target, *args, **kwargs)
                        root.set_output(output)
                except Exception as exc:
                    error = _error_text(exc)
            row = exp.row(collector, root, index, example, rep, output, error)
            for ev in exp.evaluators:
                row.results.extend(await aevaluate_run(ev, row.run, example))
            bar.tick()
            return row

    with _collecting() as collector:
        rows = list(await asyncio.gather(*(job(collector, *j) for j in exp.jobs)))
    results = exp.results(rows, time.perf_counter() - started)
    if uploading:
        await asyncio.to_thread(upload_results, results)
    return results
