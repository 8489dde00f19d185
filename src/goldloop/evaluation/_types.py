"""What an evaluator sees (a run with its child runs, an example) and what it returns."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from goldloop.domain.clock import from_iso

__all__ = ["EvaluationResult", "EvaluatorInfo", "ExampleData", "RunData"]


def _time_us(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a time must be integer microseconds or an ISO-8601 string")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        return from_iso(value)
    raise ValueError("a time must be integer microseconds or an ISO-8601 string")


def _usage_total(usage: Mapping[str, Any]) -> int | None:
    total = usage.get("total_tokens")
    if isinstance(total, int | float) and not isinstance(total, bool):
        return int(total)
    parts = [usage.get("input_tokens"), usage.get("output_tokens")]
    nums = [int(p) for p in parts if isinstance(p, int | float) and not isinstance(p, bool)]
    return sum(nums) if nums else None


@dataclass(frozen=True, slots=True)
class RunData:
    """A run as evaluators see it: the fields of the run contract plus its child runs.

    Build one with :meth:`from_dict` (a run as sent or read back through the API, optionally
    with nested ``child_runs``) or :meth:`from_trace` (the flat list of a trace's runs).
    """

    inputs: Mapping[str, Any] = field(default_factory=dict)
    outputs: Any = None
    name: str = ""
    kind: str = "chain"
    id: str | None = None
    trace_id: str | None = None
    parent_id: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    status: str | None = None
    error: Any = None
    model: str | None = None
    usage: Mapping[str, Any] = field(default_factory=dict)
    cost: float | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    child_runs: tuple[RunData, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunData:
        children = data.get("child_runs") or data.get("children") or ()
        cost = data.get("cost")
        return cls(
            inputs=data.get("inputs") or {},
            outputs=data.get("outputs"),
            name=str(data.get("name") or ""),
            kind=str(data.get("kind") or data.get("run_type") or "chain"),
            id=_opt_str(data.get("id")),
            trace_id=_opt_str(data.get("trace_id")),
            parent_id=_opt_str(data.get("parent_id")),
            start_time=_time_us(data.get("start_time")),
            end_time=_time_us(data.get("end_time")),
            status=_opt_str(data.get("status")),
            error=data.get("error"),
            model=_opt_str(data.get("model")),
            usage=data.get("usage") or {},
            cost=float(cost) if isinstance(cost, int | float) else None,
            tags=tuple(data.get("tags") or ()),
            metadata=data.get("metadata") or {},
            child_runs=tuple(
                c if isinstance(c, RunData) else RunData.from_dict(c) for c in children
            ),
        )

    @classmethod
    def from_trace(cls, runs: Iterable[Mapping[str, Any]], root_id: str | None = None) -> RunData:
        """Assemble the tree of one trace from its flat list of runs. The root is ``root_id``,
        else the run without a parent (or whose parent is not in the list)."""
        items = [dict(r) for r in runs]
        ids = {str(r["id"]) for r in items if r.get("id") is not None}
        by_parent: dict[str | None, list[dict[str, Any]]] = {}
        for r in items:
            parent = _opt_str(r.get("parent_id"))
            by_parent.setdefault(parent if parent in ids else None, []).append(r)

        def build(r: dict[str, Any]) -> RunData:
            kids = sorted(
                by_parent.get(str(r.get("id")), []),
                key=lambda c: _time_us(c.get("start_time")) or 0,
            )
            return RunData.from_dict({**r, "child_runs": [build(k) for k in kids]})

        if root_id is not None:
            roots = [r for r in items if str(r.get("id")) == root_id]
        else:
            roots = by_parent.get(None, [])
        if len(roots) != 1:
            raise ValueError(f"a trace needs exactly one root run, found {len(roots)}")
        return build(roots[0])

    @property
    def latency_ms(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time) / 1000.0

    def descendants(self) -> Iterator[RunData]:
        """Every run below this one, depth first, children in start-time order."""
        for child in sorted(self.child_runs, key=lambda c: c.start_time or 0):
            yield child
            yield from child.descendants()

    def total_cost(self) -> float | None:
        """This run's cost if it has one, else the sum of its children's (None if unknown)."""
        if self.cost is not None:
            return self.cost
        costs = [c.total_cost() for c in self.child_runs]
        known = [c for c in costs if c is not None]
        return sum(known) if known else None

    def total_tokens(self) -> int | None:
        """This run's total tokens if reported, else the sum over its children."""
        own = _usage_total(self.usage)
        if own is not None:
            return own
        counts = [c.total_tokens() for c in self.child_runs]
        known = [c for c in counts if c is not None]
        return sum(known) if known else None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class ExampleData:
    """A dataset example: inputs, reference outputs and metadata."""

    inputs: Mapping[str, Any] = field(default_factory=dict)
    outputs: Any = None
    """The reference outputs."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    split: str | None = None
    lineage: Mapping[str, Any] | None = None
    """Where the example came from (run, trace, feedback), for examples read from a dataset."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExampleData:
        outputs = data.get("outputs")
        if outputs is None:
            outputs = data.get("reference_outputs")
        split = data.get("split")
        return cls(
            inputs=data.get("inputs") or {},
            outputs=outputs,
            metadata=data.get("metadata") or {},
            id=_opt_str(data.get("id")),
            split=None if split is None else str(split),
            lineage=data.get("lineage") if isinstance(data.get("lineage"), Mapping) else None,
        )


@dataclass(frozen=True, slots=True)
class EvaluatorInfo:
    """Provenance stored with every result: which evaluator (and judge) produced it."""

    name: str
    version: str = "1"
    judge_model: str | None = None
    prompt_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"evaluator": self.name, "evaluator_version": self.version}
        if self.judge_model is not None:
            out["judge_model"] = self.judge_model
        if self.prompt_hash is not None:
            out["prompt_hash"] = self.prompt_hash
        return out


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """One score: ``key`` with a numeric ``score`` and/or a categorical/text ``value``.

    ``error`` is set when the evaluator failed (no score); ``skipped`` says why an evaluator
    chose not to score (e.g. the judge's budget was spent).
    """

    key: str
    score: float | None = None
    value: Any = None
    comment: str | None = None
    evaluator: EvaluatorInfo | None = None
    error: str | None = None
    skipped: str | None = None
    usage: Mapping[str, int] | None = None
    """Tokens spent producing this result (judges), for cost accounting."""
    cached: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def with_evaluator(self, info: EvaluatorInfo) -> EvaluationResult:
        return self if self.evaluator is not None else replace(self, evaluator=info)

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None

    def to_feedback(self, source: str | None = None) -> dict[str, Any]:
        """The feedback fields for this result, provenance in ``source_info``. ``source``
        defaults to ``model`` for a judge's score and ``api`` for other evaluators (online
        evaluation passes ``online-evaluator``)."""
        info: dict[str, Any] = self.evaluator.to_dict() if self.evaluator else {}
        if self.error is not None:
            info["error"] = self.error
        if self.skipped is not None:
            info["skipped"] = self.skipped
        if self.usage:
            info["usage"] = dict(self.usage)
        if self.cached:
            info["cached"] = True
        if self.extra:
            info["extra"] = dict(self.extra)
        return {
            "key": self.key,
            "score": self.score,
            "value": self.value,
            "comment": self.comment,
            "source": source or ("model" if info.get("judge_model") else "api"),
            "source_info": info,
        }
