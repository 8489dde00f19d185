"""A project's settings (its retention policy; deleting traces after a preview) and the
workspace's audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from goldloop.domain.errors import InvalidInput, NotFound
from goldloop.http.dashboard import web
from goldloop.services import audit, erasure, projects, retention
from goldloop.services.sessions import Session

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)

AUDIT_PAGE = 100


def _settings_page(
    request: Request, session: Session, project_id: str, status_code: int = 200, **extra: Any
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    project = projects.get(ctx, who, project_id)
    try:
        policy: dict[str, Any] | None = retention.view(retention.get_policy(ctx, who, project.id))
    except NotFound:
        policy = None
    shown: dict[str, Any] = {
        "saved": None,
        "retention_problem": None,
        "delete_problem": None,
        "filter": "",
        "preview": None,
        "changed": False,
        "deleted": None,
        **extra,
    }
    return web.render(
        request,
        "project_settings.html",
        status_code=status_code,
        project=project,
        policy=policy,
        is_admin=who.is_admin,
        **shown,
    )


@router.get("/projects/{project_id}/settings")
def project_settings(request: Request, project_id: str, session: web.SignedIn) -> Response:
    return _settings_page(request, session, project_id)


def _flag(form: dict[str, str], name: str) -> bool:
    return form.get(name, "") in ("on", "true", "1")


@router.post("/projects/{project_id}/settings/retention")
def save_retention(
    request: Request, project_id: str, session: web.SignedIn, form: web.Form
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    if form.get("action") == "remove":
        retention.delete_policy(ctx, who, project_id)
        return _settings_page(request, session, project_id, saved="Retention policy removed.")
    raw = form.get("keep_days", "").strip()
    try:
        if not raw.isdigit():
            raise InvalidInput("keep days must be a whole number of days")
        retention.set_policy(
            ctx,
            who,
            project_id,
            keep_days=int(raw),
            keep_with_feedback=_flag(form, "keep_with_feedback"),
            keep_in_datasets=_flag(form, "keep_in_datasets"),
        )
    except InvalidInput as exc:
        return _settings_page(
            request, session, project_id, status_code=400, retention_problem=exc.message
        )
    return _settings_page(request, session, project_id, saved="Retention policy saved.")


@router.post("/projects/{project_id}/settings/delete")
def delete_traces(
    request: Request, project_id: str, session: web.SignedIn, form: web.Form
) -> Response:
    """First a preview (the counts, and a form to confirm them); deleting needs the confirmed
    count to still be right, else the new preview is shown instead."""
    ctx = web.ctx_of(request)
    who = session.principal
    project = projects.get(ctx, who, project_id)
    text = form.get("filter", "").strip()
    try:
        preview = erasure.delete_traces(ctx, who, filter=text, project=project.id, dry_run=True)
    except InvalidInput as exc:
        return _settings_page(
            request, session, project_id, status_code=400, filter=text, delete_problem=exc.message
        )
    confirmed = form.get("confirm_traces")
    counts = preview.view()
    if confirmed is None or confirmed != str(counts["traces"]) or counts["traces"] == 0:
        changed = confirmed is not None and confirmed != str(counts["traces"])
        return _settings_page(
            request, session, project_id, filter=text, preview=counts, changed=changed
        )
    done = erasure.delete_traces(ctx, who, filter=text, project=project.id)
    return _settings_page(request, session, project_id, deleted=done.view())


@router.get("/audit")
def audit_page(request: Request, session: web.SignedIn, before: int | None = None) -> Response:
    ctx = web.ctx_of(request)
    entries = audit.list_entries(ctx, session.principal, limit=AUDIT_PAGE, before=before)
    older = web.query("/audit", {"before": entries[-1].id}) if len(entries) == AUDIT_PAGE else None
    return web.render(request, "audit.html", entries=[audit.view(e) for e in entries], older=older)
