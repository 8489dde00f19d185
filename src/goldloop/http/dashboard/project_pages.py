"""Projects: the list and one project's overview."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from goldloop.http.dashboard import web
from goldloop.services import projects

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)


@router.get("/")
def home(session: web.SignedIn) -> Response:
    return web.redirect("/projects")


@router.get("/projects")
def project_list(request: Request, session: web.SignedIn, after: str | None = None) -> Response:
    ctx = web.ctx_of(request)
    page = projects.list_projects(ctx, session.principal, limit=100, cursor=after)
    rows = [(p, projects.run_count(ctx, p)) for p in page.items]
    next_url = web.query("/projects", {"after": page.next_cursor}) if page.next_cursor else None
    return web.render(request, "projects.html", rows=rows, next_url=next_url)


@router.get("/projects/{project_id}")
def project_overview(request: Request, project_id: str, session: web.SignedIn) -> Response:
    ctx = web.ctx_of(request)
    project = projects.get(ctx, session.principal, project_id)
    return web.render(
        request,
        "project.html",
        project=project,
        run_count=projects.run_count(ctx, project),
    )
