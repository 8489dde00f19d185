"""The SDK's thread calls (``list_threads``, ``read_thread``; the 0.15 SDK has no async
equivalents) on traces whose metadata names a thread the three ways LangSmith accepts; the same
threads on Goldloop's own API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import langsmith as ls
import pytest
from langsmith import traceable

from goldloop.settings import Settings
from langsmith_live import Live, live_server, sdk_client, sdk_env

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with live_server(settings) as server:
        yield server


def test_list_threads_and_read_thread(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    project = f"ls-threads-{uuid.uuid4().hex[:6]}"
    sdk_env(monkeypatch, live, project)
    roots: dict[str, list[str]] = {}

    @traceable(run_type="tool")
    def lookup(q: str) -> str:
        return q.upper()

    @traceable(name="turn")
    def turn(q: str) -> str:
        run = ls.get_current_run_tree()
        assert run is not None
        roots.setdefault(str(run.metadata.get("key")), []).append(str(run.id))
        return lookup(q)

    conversations = [
        ("thread_id", "conv-1", ["hi", "and then?", "bye"]),
        ("session_id", "conv-2", ["hello", "thanks"]),
        ("conversation_id", "conv-3", ["one"]),
    ]
    with sdk_client(live) as client:
        with ls.tracing_context(client=client, project_name=project, enabled=True):
            for key, thread, questions in conversations:
                for q in questions:
                    turn(q, langsmith_extra={"metadata": {key: thread, "key": thread}})
            turn("no thread")
        client.flush()

        since = datetime.now(UTC) - timedelta(hours=1)
        threads = client.list_threads(project_name=project, start_time=since)
        by_id = {t["thread_id"]: t for t in threads}
        assert set(by_id) == {"conv-1", "conv-2", "conv-3"}
        for _, thread, questions in conversations:
            item = by_id[thread]
            assert item["count"] == len(questions)
            # each thread's runs are its turns (root runs), oldest first
            assert [str(r.id) for r in item["runs"]] == roots[thread]
            assert [r.inputs for r in item["runs"]] == [{"q": q} for q in questions]
            assert item["min_start_time"] is not None
        # most recently active first
        assert [t["thread_id"] for t in threads] == ["conv-3", "conv-2", "conv-1"]
        assert len(client.list_threads(project_name=project, start_time=since, limit=1)) == 1

        read = list(client.read_thread(thread_id="conv-1", project_name=project))
        assert [str(r.id) for r in read] == roots["conv-1"]
        assert [r.outputs for r in read] == [
            {"output": "HI"},
            {"output": "AND THEN?"},
            {"output": "BYE"},
        ]
        assert all(r.metadata["thread_id"] == "conv-1" for r in read)
        # is_root=False: the thread's other runs (children inherit the metadata)
        children = client.read_thread(thread_id="conv-2", project_name=project, is_root=False)
        assert [(r.name, r.outputs) for r in children] == [
            ("lookup", {"output": "HELLO"}),
            ("lookup", {"output": "THANKS"}),
        ]
        assert list(client.read_thread(thread_id="nobody", project_name=project)) == []
        project_id = str(client.read_project(project_name=project).id)

    with live.api() as api:
        native = api.get(f"/projects/{project_id}/threads").json()["items"]
        assert [(t["thread_id"], t["turn_count"], t["run_count"]) for t in native] == [
            ("conv-3", 1, 2),
            ("conv-2", 2, 4),
            ("conv-1", 3, 6),
        ]
        conv = api.get(f"/projects/{project_id}/threads/conv-1").json()
        assert [t["run_id"] for t in conv["turns"]] == roots["conv-1"]
        assert [t["outputs"] for t in conv["turns"]] == [
            {"output": "HI"},
            {"output": "AND THEN?"},
            {"output": "BYE"},
        ]
