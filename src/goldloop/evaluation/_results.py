"""What an experiment produced: one row per (example, repetition), summaries, comparison."""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from goldloop.domain.comparability import (
    ChangedPolicy,
    JudgePolicy,
    ScoreKeys,
    Side,
    cluster_of,
    compare_sides,
    reference_fingerprint,
)
from goldloop.domain.comparison import (
    Attempt,
    ErrorPolicy,
    Failed,
    KeyComparison,
    worst_score,
)
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
    reference_hash: str | None = None
    """Fingerprint of the example's reference outputs (None: not known, e.g. an experiment
    read back from a server that did not record it)."""
    cluster: str | None = None
    """The cluster (conversation, session, source trace) the example belongs to, if any."""

    def __post_init__(self) -> None:
        if self.cluster is None:
            self.cluster = cluster_of(self.example.metadata, self.example.lineage)

    def attempt(self, key: str, producers: frozenset[str] = frozenset()) -> Attempt:
        """This call's score of ``key``, ``None`` when the evaluator skipped it, or
        :class:`Failed` saying why there is no score. ``producers``: the evaluators that give
        ``key`` (their errors are stored under their own name)."""
        found = [r for r in self.results if r.key == key]
        if self.error is not None and not any(r.score is not None for r in found):
            return Failed(f"target error: {self.error.splitlines()[0][:200]}")
        if not found:
            found = [
                r for r in self.results
                if r.error and r.evaluator is not None and r.evaluator.name in producers
            ]  # fmt: skip
        if not found:
            return Failed("no score")
        res = found[0]
        if res.score is not None:
            return res.score
        if res.error:
            return Failed(f"evaluator error: {str(res.error).splitlines()[0][:200]}")
        if res.skipped:
            return None
        return Failed("no score")

    def to_dict(self) -> dict[str, Any]:
        return {
            "example_id": self.example_key,
            "repetition": self.repetition,
            "run_id": self.run.id,
            "trace_id": self.run.trace_id,
            "inputs": self.run.inputs,
            "outputs": self.run.outputs,
            "reference_outputs": self.example.outputs,
            "reference_hash": self.reference_hash,
            "cluster": self.cluster,
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

    def _keys(self) -> ScoreKeys:
        return ScoreKeys.of(
            [
                (res.key, res.evaluator.name if res.evaluator else None, res.error is not None)
                for row in self.rows
                for res in row.results
            ]
        )

    def score_keys(self) -> list[str]:
        """The keys scored, in order of appearance. An evaluator that raised everywhere it ran
        is a key of its own (named after it); one that scored elsewhere is not, and its
        errors count against the keys it gave."""
        return list(self._keys().keys)

    def scores(self, key: str) -> dict[str, list[float | None]]:
        """``{example: [score of each repetition]}`` for one key (None where not scored)."""
        out: dict[str, list[float | None]] = {}
        for row in self.rows:
            values = [r.score for r in row.results if r.key == key]
            out.setdefault(row.example_key, []).append(values[0] if values else None)
        return out

    def attempts(self, key: str) -> dict[str, list[Attempt]]:
        """``{example: [attempt of each repetition]}``: a score, ``None`` (skipped) or
        :class:`~goldloop.domain.comparison.Failed` (target or evaluator error, no score)."""
        producers = self._keys().producers_of(key)
        out: dict[str, list[Attempt]] = {}
        for row in self.rows:
            out.setdefault(row.example_key, []).append(row.attempt(key, producers))
        return out

    def failed(self, key: str) -> list[str]:
        """Examples with at least one failed attempt for ``key``."""
        return sorted(
            ex for ex, v in self.attempts(key).items() if any(isinstance(a, Failed) for a in v)
        )

    def key_mean(self, key: str, *, errors: ErrorPolicy = "fail") -> tuple[float, int, int]:
        """(mean, attempts counted, failed attempts) of ``key``. With ``errors="fail"`` a failed
        attempt counts as the lowest score seen for the key (0 when there is none): a threshold
        must never pass because the answers that broke the evaluator were left out."""
        scores: list[float] = []
        failed = 0
        for values in self.attempts(key).values():
            for a in values:
                if isinstance(a, Failed):
                    failed += 1
                elif a is not None:
                    scores.append(float(a))
        counted = list(scores)
        if errors == "fail":
            counted += [self.worst_score(key)] * failed
        mean = sum(counted) / len(counted) if counted else math.nan
        return mean, len(counted), failed

    def worst_score(self, key: str) -> float:
        """What a failed attempt of ``key`` counts as: 0 on the usual 0-1 scale, else the
        lowest score given for ``key`` in this experiment."""
        return worst_score(
            [float(r.score) for row in self.rows for r in row.results
             if r.key == key and r.score is not None]
        )  # fmt: skip

    def judges(self) -> dict[str, frozenset[str]]:
        """``{key: {"model=... prompt=...", ...}}`` for keys scored by an LLM judge."""
        out: dict[str, set[str]] = {}
        for row in self.rows:
            for r in row.results:
                info = r.evaluator
                if info is not None and (info.judge_model or info.prompt_hash):
                    out.setdefault(r.key, set()).add(
                        f"model={info.judge_model or '?'} prompt={info.prompt_hash or '?'}"
                    )
        return {k: frozenset(v) for k, v in out.items()}

    def side(self, *, cluster_field: str | None = None) -> Side:
        """This experiment as the comparison code sees it."""
        clusters: dict[str, str] = {}
        references: dict[str, str | None] = {}
        for row in self.rows:
            references.setdefault(row.example_key, row.reference_hash)
            cluster = (
                cluster_of(row.example.metadata, row.example.lineage, cluster_field)
                if cluster_field
                else row.cluster
            )
            if cluster is not None:
                clusters[row.example_key] = cluster
        return Side(
            name=self.experiment,
            dataset_version=self.dataset_version,
            attempts={key: self.attempts(key) for key in self.score_keys()},
            references=references,
            judges=self.judges(),
            clusters=clusters,
        )

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
        alpha: float = 0.05,
        errors: ErrorPolicy = "fail",
        changed: ChangedPolicy = "refuse",
        judge_change: JudgePolicy = "refuse",
        cluster_field: str | None = None,
    ) -> list[KeyComparison]:
        """Paired comparison with ``baseline`` (A) as the reference and this run as B, for every
        key both have (or ``keys``). A failed candidate attempt counts as the key's worst score
        unless ``errors="exclude"``; a key whose references or judge changed comes back
        ``comparable=False`` unless ``changed="unchanged-only"`` / ``judge_change="allow"``.
        See docs/statistics.md."""
        wanted = (
            keys
            if keys is not None
            else [k for k in baseline.score_keys() if k in self.score_keys()]
        )
        return compare_sides(
            baseline.side(cluster_field=cluster_field),
            self.side(cluster_field=cluster_field),
            keys=wanted,
            lower_is_better=lower_is_better,
            alpha=alpha,
            errors=errors,
            changed=changed,
            judge_change=judge_change,
        )

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
                    reference_hash=r.get("reference_hash")
                    or (
                        reference_fingerprint(r.get("reference_outputs"))
                        if "reference_outputs" in r
                        else None
                    ),
                    cluster=r.get("cluster"),
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
