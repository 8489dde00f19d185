"""Read runs, traces and project statistics from a Goldloop server (plain httpx, synchronous).

    from goldloop.client_runs import RunsClient

    with RunsClient("http://127.0.0.1:8700", api_key="gl_...") as gl:
        slow = gl.list_runs(project="agent-support", filter="root and latency > 10s", light=True)
        for run in gl.iter_runs(project="agent-support", filter='feedback.correctness < 0.5'):
            tree = gl.get_trace(run["trace_id"])

Every method returns the JSON the API answers (see docs/query-api.md). A 4xx/5xx answer raises
``ApiError`` carrying the status, the error code and the message (e.g. an invalid filter's
position). Unlike tracing, reading is an explicit call, so errors are raised, not swallowed.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any

import httpx

from goldloop.client import ApiError

__all__ = ["ApiError", "RunsClient"]


class RunsClient:
    """Read access to ``/api/v1/runs``, ``/traces`` and ``/projects/{id}/stats``.

    ``transport`` is the httpx seam for tests (e.g. ``httpx.MockTransport``)."""

    def __init__(
        self,
        endpoint: str,
        *,
        api_key: str,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=endpoint.rstrip("/") + "/api/v1",
            headers={"x-api-key": api_key},
            timeout=timeout_s,
            transport=transport,
        )

    def __enter__(self) -> RunsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {"code": "http_error", "message": response.text[:500]}
            raise ApiError(
                response.status_code,
                error.get("code", ""),
                error.get("message", ""),
                error.get("details"),
            )
        return response.json()

    def get_run(self, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/runs/{run_id}")
        return result

    def get_trace(self, trace_id: str, *, light: bool = False) -> dict[str, Any]:
        """The trace as a flat pre-order tree: ``runs`` with ``depth`` and ``children``."""
        params = {"select": "light" if light else "full"}
        result: dict[str, Any] = self._call("GET", f"/traces/{trace_id}", params=params)
        return result

    def list_runs(
        self,
        *,
        project: str | None = None,
        filter: str | None = None,
        sort: str = "start_time",
        order: str = "desc",
        limit: int = 50,
        cursor: str | None = None,
        light: bool = False,
    ) -> dict[str, Any]:
        """One page: ``{"items": [...], "next_cursor": ...}``."""
        body = {
            "project": project,
            "filter": filter,
            "sort": sort,
            "order": order,
            "limit": limit,
            "cursor": cursor,
            "select": "light" if light else "full",
        }
        result: dict[str, Any] = self._call("POST", "/runs/query", json=body)
        return result

    def iter_runs(
        self,
        *,
        project: str | None = None,
        filter: str | None = None,
        sort: str = "start_time",
        order: str = "desc",
        page_size: int = 200,
        light: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Every matching run, page after page (keyset pagination: nothing skipped or repeated)."""
        cursor = None
        while True:
            page = self.list_runs(
                project=project,
                filter=filter,
                sort=sort,
                order=order,
                limit=page_size,
                cursor=cursor,
                light=light,
            )
            yield from page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def project_stats(
        self,
        project_id: str,
        *,
        bucket: str = "1h",
        start: str | int | None = None,
        end: str | int | None = None,
        filter: str | None = None,
    ) -> dict[str, Any]:
        """Per-bucket count, errors, error rate, latency p50/p95/p99/avg, tokens and cost."""
        params = {"bucket": bucket, "start": start, "end": end, "filter": filter}
        clean = {k: str(v) for k, v in params.items() if v is not None}
        result: dict[str, Any] = self._call("GET", f"/projects/{project_id}/stats", params=clean)
        return result
