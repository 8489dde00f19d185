"""The web dashboard: server-rendered pages on the API's port (see docs/dashboard.md)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from goldloop.http.dashboard import (
    alert_pages,
    auth_pages,
    dataset_pages,
    experiment_pages,
    feedback_pages,
    pairwise_pages,
    project_pages,
    queue_pages,
    retention_pages,
    rule_pages,
    run_list_pages,
    run_pages,
    thread_pages,
)

__all__ = ["install"]


class _Assets(StaticFiles):
    """The dashboard's own CSS, JS and icons, with ``nosniff`` so a browser never guesses."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install(app: FastAPI) -> None:
    """Mount the static assets and every page route on ``app``."""
    app.mount(
        "/static",
        _Assets(packages=[("goldloop.http.dashboard", "static")]),
        name="static",
    )
    pages = (
        auth_pages,
        project_pages,
        run_list_pages,
        run_pages,
        thread_pages,
        feedback_pages,
        pairwise_pages,
        queue_pages,
        dataset_pages,
        experiment_pages,
        alert_pages,
        rule_pages,
        retention_pages,
    )
    for module in pages:
        app.include_router(module.router)
