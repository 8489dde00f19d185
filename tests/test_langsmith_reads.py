"""``list_runs`` with filters and ``read_run`` of the real SDK, answered from Goldloop's run query
service; the same runs as Goldloop's own API returns."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import httpx
import langsmith as ls
import pytest
from langsmith import traceable
from langsmith.run_trees import RunTree

from goldloop.settings import Settings
from langsmith_live import HTTP_TIMEOUT, Live, live_server, sdk_client, sdk_env

# list_runs/read_run are deprecated in the 0.15 SDK in favour of its v2 API, but remain its
# default v1 path.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with live_server(settings) as server:
        yield server


def _trace(live: Live, monkeypatch: pytest.MonkeyPatch, project: str) -> dict[str, RunTree]:
    sdk_env(monkeypatch, live, project)
    seen: dict[str, RunTree] = {}

    @traceable(run_type="tool", tags=["beta"], metadata={"step": "lookup"})
    def lookup(x: int) -> int:
        run = ls.get_current_run_tree()
        assert run is not None
        seen[f"lookup{x}"] = run
        if x < 0:
            raise KeyError("missing")
        return x + 1

    @traceable(name="agent", metadata={"customer": "acme"})
    def agent(x: int) -> int:
        run = ls.get_current_run_tree()
        assert run is not None
        seen["agent"] = run
        with contextlib.suppress(KeyError):
            lookup(-x)
        return lookup(x)

    with sdk_client(live) as client:
        with ls.tracing_context(client=client, project_name=project, enabled=True):
            agent(3)
        client.flush()
    return seen


def test_list_runs_with_filters_and_read_run(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    project = f"reads-{uuid.uuid4().hex[:6]}"
    seen = _trace(live, monkeypatch, project)
    root, ok, failed = (str(seen[k].id) for k in ("agent", "lookup3", "lookup-3"))
    with sdk_client(live) as client:

        def ids(**kwargs: object) -> set[str]:
            return {str(r.id) for r in client.list_runs(project_name=project, **kwargs)}

        assert ids() == {root, ok, failed}
        assert ids(filter='eq(name, "lookup")') == {ok, failed}
        assert ids(filter='and(eq(run_type, "tool"), neq(error, null))') == {failed}
        assert ids(filter='and(has(tags, "beta"), eq(error, null))') == {ok}
        # children inherit their parent's metadata; only the lookups have "step"
        acme = 'and(eq(metadata_key, "customer"), eq(metadata_value, "acme"))'
        assert ids(filter=acme) == {root, ok, failed}
        step = 'and(eq(metadata_key, "step"), eq(metadata_value, "lookup"))'
        assert ids(filter=step) == {ok, failed}
        assert ids(filter='not(exists(metadata, "step"))') == {root}
        assert ids(is_root=True) == {root}
        assert ids(run_type="tool", error=True) == {failed}
        assert ids(trace_id=root, is_root=False) == {ok, failed}
        assert len(list(client.list_runs(project_name=project, limit=2))) == 2

        run = client.read_run(root)
        assert (run.name, run.run_type, run.status) == ("agent", "chain", "success")
        assert run.inputs == {"x": 3}
        assert run.outputs == {"output": 4}
        assert run.metadata["customer"] == "acme"
        assert run.dotted_order == seen["agent"].dotted_order
        bad = client.read_run(failed)
        assert bad.error is not None
        assert bad.error.startswith("KeyError('missing')\n\nTraceback")
        assert str(bad.parent_run_id) == root
        tree = client.read_run(root, load_child_runs=True)
        assert {str(c.id) for c in tree.child_runs or []} == {ok, failed}

    with live.api() as api:
        mine = api.get(f"/runs/{root}").json()
    assert (mine["name"], mine["inputs"], mine["project_id"]) == (
        "agent",
        {"x": 3},
        str(run.session_id),
    )


def test_unsupported_queries_say_so(live: Live) -> None:
    headers = {"x-api-key": live.key}
    with httpx.Client(timeout=HTTP_TIMEOUT, base_url=live.endpoint, headers=headers) as raw:
        r = raw.post("/runs/query", json={"trace_filter": 'eq(nope, "x")'})
        assert r.status_code == 400
        assert "trace_filter" in r.json()["error"]["message"]
        r = raw.post("/runs/query", json={"filter": 'eq(feedback_key, "x")'})
        assert r.status_code == 400
        assert raw.get(f"/runs/{uuid.uuid4()}").status_code == 404
        empty = raw.post("/runs/query", json={"session": [str(uuid.uuid4())]}).json()
        assert empty == {"runs": [], "cursors": {"next": None}}
