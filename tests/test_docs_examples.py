"""The Python examples in the evaluator and statistics docs run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _python_blocks(name: str) -> list[str]:
    text = (DOCS / name).read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("doc", ["evaluators.md"])
def test_python_blocks_run(doc: str, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _python_blocks(doc)
    assert blocks
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, f"{doc}:python", "exec"), namespace)
    out = capsys.readouterr().out
    assert "score=1.0" in out
