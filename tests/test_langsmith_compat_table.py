"""The generator of docs/langsmith.md's tested-calls table: rows from the records, columns per
SDK line with the backends each call passed on, and a check that fails on any difference."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import langsmith_compat


def _write(folder: Path, name: str, records: list[dict[str, object]]) -> None:
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records))


def test_rows_columns_and_marker_replacement(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "sdk-0.15-gw0.jsonl",
        [
            {
                "test": "tests/test_langsmith_datasets.py::test_a",
                "backend": "sqlite",
                "sdk": "0.15",
                "calls": ["Client.create_dataset", "traceable"],
            },
            {
                "test": "tests/test_langsmith_datasets.py::test_a",
                "backend": "postgres",
                "sdk": "0.15",
                "calls": ["Client.create_dataset"],
            },
        ],
    )
    _write(
        tmp_path,
        "sdk-0.11-gw1.jsonl",
        [
            {
                "test": "tests/test_langsmith_feedback.py::test_b",
                "backend": "sqlite",
                "sdk": "0.11",
                "calls": ["Client.create_dataset"],
            }
        ],
    )
    table = langsmith_compat.table(tmp_path).splitlines()
    assert table[0] == "| SDK call | langsmith 0.15 | langsmith 0.11 | tests |"
    assert table[2:] == [
        "| `traceable` | SQLite | not tested | `datasets` |",
        "| `Client.create_dataset` | PostgreSQL, SQLite | SQLite | `datasets`, `feedback` |",
    ]
    doc = f"intro\n{langsmith_compat.BEGIN}\nold table\n{langsmith_compat.END}\noutro\n"
    rendered = langsmith_compat.render(doc, "NEW\n")
    assert rendered == f"intro\n{langsmith_compat.BEGIN}\nNEW\n{langsmith_compat.END}\noutro\n"
    with pytest.raises(SystemExit, match="markers"):
        langsmith_compat.render("no markers here", "NEW\n")


def test_check_fails_when_the_docs_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "records"
    records.mkdir()
    _write(
        records,
        "sdk-0.15-main.jsonl",
        [
            {
                "test": "tests/test_langsmith_x.py::x",
                "backend": "sqlite",
                "sdk": "0.15",
                "calls": ["Client.read_run"],
            }
        ],
    )
    doc = tmp_path / "langsmith.md"
    doc.write_text(f"{langsmith_compat.BEGIN}\n{langsmith_compat.END}\n")
    monkeypatch.setattr(langsmith_compat, "DOC", doc)
    assert langsmith_compat.main([str(records), "--check"]) == 1
    assert "differs from what the tests called" in capsys.readouterr().err
    assert langsmith_compat.main([str(records), "--write"]) == 0
    assert "`Client.read_run` | SQLite" in doc.read_text()
    assert langsmith_compat.main([str(records), "--check"]) == 0
    (records / "sdk-0.15-bad.jsonl").write_text("{not json\n")
    with pytest.raises(SystemExit, match=re.escape("sdk-0.15-bad.jsonl:1")):
        langsmith_compat.main([str(records), "--check"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match="no records"):
        langsmith_compat.main([str(empty), "--check"])
