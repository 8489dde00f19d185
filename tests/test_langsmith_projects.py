"""LangSmith sessions are Goldloop projects: the SDK's project calls, checked via Goldloop's API."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from langsmith.utils import LangSmithConflictError, LangSmithNotFoundError

from goldloop.settings import Settings
from langsmith_live import HTTP_TIMEOUT, Live, live_server, sdk_client

pytestmark = pytest.mark.slow


@pytest.fixture
def live(settings: Settings) -> Iterator[Live]:
    with live_server(settings) as server:
        yield server


def test_project_lifecycle(live: Live) -> None:
    with sdk_client(live) as client:
        made = client.create_project("ls-proj", description="d", metadata={"team": "a"})
        assert made.metadata == {"team": "a"}
        assert made.tenant_id is not None
        assert made.reference_dataset_id is None
        with pytest.raises(LangSmithConflictError):
            client.create_project("ls-proj")
        again = client.create_project("ls-proj", upsert=True)
        assert again.id == made.id
        assert client.read_project(project_name="ls-proj").id == made.id
        assert client.read_project(project_id=made.id).name == "ls-proj"
        assert client.has_project("ls-proj")
        assert not client.has_project("nope")
        names = {p.name for p in client.list_projects(name_contains="ls-")}
        assert names == {"ls-proj"}
        updated = client.update_project(made.id, name="ls-renamed")
        assert updated.name == "ls-renamed"
        assert updated.description == "d"  # null = unchanged
        assert updated.metadata == {"team": "a"}
        closed = client.update_project(made.id, metadata={"team": "b"}, end_time=made.start_time)
        assert closed.metadata == {"team": "b"}
        assert closed.end_time == made.start_time
        with live.api() as api:
            mine = api.get(f"/projects/{made.id}").json()
        assert (mine["name"], mine["description"]) == ("ls-renamed", "d")
        assert mine["extra"]["metadata"] == {"team": "b"}
        client.delete_project(project_id=made.id)
        with pytest.raises(LangSmithNotFoundError):
            client.read_project(project_id=made.id)
    with live.api() as api:
        assert api.get(f"/projects/{made.id}").status_code == 404


def test_offset_paging_and_auth(live: Live) -> None:
    with live.api() as api:
        for i in range(7):
            assert api.post("/projects", json={"name": f"pg-{i}"}).status_code == 201
    with sdk_client(live) as client:
        listed = [p.name for p in client.list_projects(limit=5)]
    assert listed[:5] == ["pg-0", "pg-1", "pg-2", "pg-3", "pg-4"]
    headers = {"x-api-key": live.key}
    page = httpx.get(
        timeout=HTTP_TIMEOUT,
        url=live.endpoint + "/sessions",
        params={"limit": 3, "offset": 2},
        headers=headers,
    ).json()
    assert [p["name"] for p in page] == ["pg-2", "pg-3", "pg-4"]
    assert all(p["tenant_id"] and "reference_dataset_id" in p for p in page)
    assert httpx.get(timeout=HTTP_TIMEOUT, url=live.endpoint + "/sessions").status_code == 401
    assert (
        httpx.get(
            timeout=HTTP_TIMEOUT, url=live.endpoint + "/api/v1/sessions", headers=headers
        ).status_code
        == 200
    )
