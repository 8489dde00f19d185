"""``RunsClient``: the read client of runs, traces and statistics, kept for code written
against it. ``goldloop.client.Client`` has the same methods (and ingestion, export, import and
the rest of the API); new code should use it.

    from goldloop.client_runs import RunsClient

    with RunsClient("http://127.0.0.1:8700", api_key="gl_...") as gl:
        slow = gl.list_runs(project="agent-support", filter="root and latency > 10s", light=True)
"""

from __future__ import annotations

import httpx

from goldloop.client import ApiError, Client

__all__ = ["ApiError", "RunsClient"]


class RunsClient(Client):
    """``Client`` with this module's original constructor (``timeout_s``, key required).

    ``transport`` is the httpx seam for tests (e.g. ``httpx.MockTransport``)."""

    def __init__(
        self,
        endpoint: str,
        *,
        api_key: str,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(endpoint, api_key, timeout=timeout_s, transport=transport)
