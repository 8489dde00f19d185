"""The web dashboard: server-rendered pages on the API's port (see docs/dashboard.md)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from goldloop.http.dashboard import (
    alert_pages,
    auth_pages,
    dataset_pages,
    experiment_detail,
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

__all__ = ["install", "pages"]


class _Assets(StaticFiles):
    """The dashboard's own CSS, JS and icons, with ``nosniff`` so a browser never guesses."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install(app: FastAPI) -> None:
    """Mount the static assets on ``app`` (the page routes: ``pages``)."""
    app.mount(
        "/static",
        _Assets(packages=[("goldloop.http.dashboard", "static")]),
        name="static",
    )


def pages() -> APIRouter:
    """Every page route of the dashboard."""
    router = APIRouter()
    for module in (
        auth_pages,
        project_pages,
        run_list_pages,
        run_pages,
        thread_pages,
        feedback_pages,
        pairwise_pages,
        queue_pages,
        dataset_pages,
        experiment_pages,  # before experiment_detail: /experiments/compare is not an {ref}
        experiment_detail,
        alert_pages,
        rule_pages,
        retention_pages,
    ):
        router.include_router(module.router)
    return router
