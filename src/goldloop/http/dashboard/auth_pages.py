"""Sign in with an API key, sign out."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from goldloop.domain.errors import Unauthenticated
from goldloop.http.dashboard import web
from goldloop.services import sessions

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)


def _login_form(
    request: Request, next_path: str, error: str | None = None, status_code: int = 200
) -> Response:
    # Sign-in has no session yet, so its CSRF token is a double-submit cookie: a cross-site form
    # cannot read it, so it cannot log a victim into the attacker's workspace.
    token = web.new_login_csrf()
    response = web.render(
        request,
        "login.html",
        status_code=status_code,
        csrf_token=token,
        next_path=next_path,
        error=error,
    )
    response.set_cookie(
        web.LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=web.cookie_secure(request),
    )
    return response


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    ctx = web.ctx_of(request)
    current = await run_in_threadpool(sessions.lookup, ctx, request.cookies.get(web.SESSION_COOKIE))
    if current is not None:
        return web.redirect(web.local_path(next, "/projects"))
    return _login_form(request, web.local_path(next, ""))


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await web.form_fields(request)
    cookie = request.cookies.get(web.LOGIN_CSRF_COOKIE, "")
    presented = fields.get(web.CSRF_FIELD, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), presented.encode()):
        raise web.CsrfRejected()
    next_path = web.local_path(fields.get("next"), "")
    try:
        opened = await run_in_threadpool(
            sessions.sign_in, web.ctx_of(request), fields.get("api_key", "").strip()
        )
    except Unauthenticated:
        return _login_form(
            request, next_path, "That API key is unknown or revoked.", status_code=401
        )
    response = web.redirect(next_path or "/projects")
    response.set_cookie(
        web.SESSION_COOKIE,
        opened.token,
        max_age=web.ctx_of(request).settings.dashboard_session_ttl_s,
        path="/",
        httponly=True,
        samesite="lax",
        secure=web.cookie_secure(request),
    )
    response.delete_cookie(web.LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, session: web.SignedIn, form: web.Form) -> Response:
    await run_in_threadpool(
        sessions.sign_out, web.ctx_of(request), request.cookies.get(web.SESSION_COOKIE)
    )
    response = web.redirect("/login")
    response.delete_cookie(web.SESSION_COOKIE, path="/")
    return response
