"""What an experiment produced: one row per (example, repetition), summaries, comparison."""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from goldloop.domain.comparison import KeyComparison, compare_key
from goldloop.evaluation._types import EvaluationResult, EvaluatorInfo, ExampleData, RunData

__all__ = ["ExperimentResults", "ExperimentRow"]


@dataclass(slots=True)
class ExperimentRow:
    """One call of the target on one example (one repetition) and its evaluator results."""

    example: ExampleData
    example_key: str
    """The example's id, or its position in the data when it has none."""
    repetition: int
    run: RunData
    error: str | None
    results: list[EvaluationResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "example_id": self.example_key,
            "repetition": self.repetition,
            "run_id": self.run.id,
            "trace_id": self.run.trace_id,
            "inputs": self.run.inputs,
            "outputs": self.run.outputs,
            "reference_outputs": self.example.outputs,
            "latency_ms": self.run.latency_ms,
            "error": self.error,
            "results": [
                {
                    "key": r.key,
                    "score": r.score,
                    "value": r.value,
                    "comment": r.comment,
                    "error": r.error,
                    "skipped": r.skipped,
                    **(r.evaluator.to_dict() if r.evaluator else {}),
                }
                for r in self.results
            ],
        }


@dataclass(slots=True)
class ExperimentResults:
    """Returned by ``goldloop.evaluate``. ``print(results)`` shows the summary table;
    ``results.to_pandas()`` gives one row per (example, repetition, key)."""

    experiment: str
    rows: list[ExperimentRow]
    dataset: str | None = None
    dataset_version: int | None = None
    repetitions: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    uploaded: bool = False

    @property
    def errors(self) -> int:
        """Target calls that raised."""
        return sum(1 for r in self.rows if r.error is not None)

    @property
    def evaluator_errors(self) -> int:
        return sum(1 for r in self.rows for res in r.results if res.error is not None)

    def score_keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for row in self.rows:
            for res in row.results:
                seen.setdefault(res.key, None)
        return list(seen)

    def scores(self, key: str) -> dict[str, list[float | None]]:
        """``{example: [score of each repetition]}`` for one key (None where not scored)."""
        out: dict[str, list[float | None]] = {}
        for row in self.rows:
            values = [r.score for r in row.results if r.key == key]
            out.setdefault(row.example_key, []).append(values[0] if values else None)
        return out

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per key: mean score, number scored, evaluator errors and skips."""
        out: dict[str, dict[str, Any]] = {}
        for key in self.score_keys():
            scored = [
                res.score
                for row in self.rows
                for res in row.results
                if res.key == key and res.score is not None
            ]
            failed = sum(
                1 for row in self.rows for res in row.results if res.key == key and res.error
            )
            skipped = sum(
                1 for row in self.rows for res in row.results if res.key == key and res.skipped
            )
            out[key] = {
                "mean": sum(scored) / len(scored) if scored else math.nan,
                "n": len(scored),
                "errors": failed,
                "skipped": skipped,
            }
        return out

    def __str__(self) -> str:
        examples = len({r.example_key for r in self.rows})
        head = (
            f"Experiment {self.experiment}: {examples} examples x {self.repetitions} "
            f"repetition(s), {self.errors} target error(s), {self.wall_s:.1f} s"
        )
        if self.dataset:
            head += f"\nDataset {self.dataset} version {self.dataset_version}"
        lines = [head, f"{'key':28} {'mean':>8} {'n':>6} {'errors':>7} {'skipped':>8}"]
        for key, s in self.summary().items():
            lines.append(
                f"{key:28} {s['mean']:8.3f} {s['n']:6d} {s['errors']:7d} {s['skipped']:8d}"
            )
        return "\n".join(lines)

    def compare(
        self,
        baseline: ExperimentResults,
        *,
        keys: Sequence[str] | None = None,
        lower_is_better: Sequence[str] = (),
        seed: int = 0,
    ) -> list[KeyComparison]:
        """Paired comparison with ``baseline`` (A) as the reference and this run as B, for every
        key both have (or ``keys``). See docs/statistics.md."""
        wanted = (
            keys
            if keys is not None
            else [k for k in baseline.score_keys() if k in self.score_keys()]
        )
        return [
            compare_key(
                key,
                baseline.scores(key),
                self.scores(key),
                higher_is_better=key not in lower_is_better,
                seed=seed,
            )
            for key in wanted
        ]

    def to_pandas(self) -> Any:
        """One row per (example, repetition, key); needs pandas."""
        pd = importlib.import_module("pandas")
        records = []
        for row in self.rows:
            base = {
                "example_id": row.example_key,
                "repetition": row.repetition,
                "run_id": row.run.id,
                "error": row.error,
                "latency_ms": row.run.latency_ms,
            }
            if not row.results:
                records.append(base)
            for res in row.results:
                rec = dict(base)
                rec.update(key=res.key, score=res.score, value=res.value, comment=res.comment)
                records.append(rec)
        return pd.DataFrame.from_records(records)

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "dataset": self.dataset,
            "dataset_version": self.dataset_version,
            "repetitions": self.repetitions,
            "metadata": self.metadata,
            "wall_s": self.wall_s,
            "summary": self.summary(),
            "rows": [r.to_dict() for r in self.rows],
        }

    def save(self, path: str | Path) -> Path:
        """Write the results as JSON (what ``goldloop compare`` and ``goldloop gate`` read)."""
        out = Path(path)
        out.write_bytes(orjson.dumps(self.to_dict(), default=str, option=orjson.OPT_INDENT_2))
        return out

    @classmethod
    def load(cls, path: str | Path) -> ExperimentResults:
        data = orjson.loads(Path(path).read_bytes())
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentResults:
        rows = []
        for r in data.get("rows", []):
            results = [
                EvaluationResult(
                    key=x["key"],
                    score=x.get("score"),
                    value=x.get("value"),
                    comment=x.get("comment"),
                    error=x.get("error"),
                    skipped=x.get("skipped"),
                    evaluator=EvaluatorInfo(
                        x.get("evaluator", "?"),
                        x.get("evaluator_version", "1"),
                        x.get("judge_model"),
                        x.get("prompt_hash"),
                    ),
                )
                for x in r.get("results", [])
            ]
            rows.append(
                ExperimentRow(
                    example=ExampleData(
                        inputs=r.get("inputs") or {},
                        outputs=r.get("reference_outputs"),
                        id=r.get("example_id"),
                    ),
                    example_key=str(r["example_id"]),
                    repetition=int(r.get("repetition", 0)),
                    run=RunData(
                        inputs=r.get("inputs") or {},
                        outputs=r.get("outputs"),
                        id=r.get("run_id"),
                        trace_id=r.get("trace_id"),
                    ),
                    error=r.get("error"),
                    results=results,
                )
            )
        return cls(
            experiment=str(data.get("experiment", "?")),
            rows=rows,
            dataset=data.get("dataset"),
            dataset_version=data.get("dataset_version"),
            repetitions=int(data.get("repetitions", 1)),
            metadata=dict(data.get("metadata") or {}),
            wall_s=float(data.get("wall_s", 0.0)),
        )
