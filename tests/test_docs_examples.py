"""The Python examples in docs/evaluators.md run as written (the judge ones against a local
fake endpoint instead of the URL in the doc)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_llm import FakeLLM, completion
from goldloop.evaluation import RunData

DOCS = Path(__file__).resolve().parents[1] / "docs"
DOC_URL = "http://127.0.0.1:11434/v1"


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM(
        lambda body: (200, completion('{"reasoning": "ok", "score": 1, "winner": "A"}'), {})
    )
    yield server
    server.stop()


def test_evaluator_doc_examples_run(
    llm: FakeLLM, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (DOCS / "evaluators.md").read_text()
    assert DOC_URL in text
    text = text.replace(DOC_URL, llm.url).replace("~/.cache/goldloop", str(tmp_path))
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 4
    namespace: dict[str, Any] = {}
    for block in blocks:
        if "run_a" in block:
            namespace["run_a"] = namespace["run"]
            namespace["run_b"] = RunData(inputs={"q": "Can I cancel?"}, outputs={"answer": "?"})
        exec(compile(block, "evaluators.md", "exec"), namespace)
    assert "score=1.0" in capsys.readouterr().out
    assert namespace["result"].score == 1.0
    assert namespace["res"].winner == "tie"  # the fake always prefers what it sees first
    assert llm.calls == 3
    assert (tmp_path / "judge.jsonl").exists()
