"""The dashboard's plumbing: templates, security headers, sessions, CSRF, error pages.

Pages are server-rendered Jinja2 templates with autoescaping on for every template, so any
value interpolated into HTML (text or attribute) is escaped. Scripts live in static files only;
the Content-Security-Policy forbids inline scripts and styles as a second line of defence.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode

import jinja2
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from goldloop._version import __version__
from goldloop.domain.errors import GoldloopError, InvalidInput
from goldloop.http.dashboard import formatting
from goldloop.http.errors import status_for
from goldloop.services import sessions
from goldloop.services.context import ServiceContext
from goldloop.services.sessions import Session

SESSION_COOKIE = "goldloop_session"
LOGIN_CSRF_COOKIE = "goldloop_login_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    # Pages show private trace data: keep them out of shared caches and the back-forward cache.
    "Cache-Control": "no-store",
}

templates = jinja2.Environment(
    loader=jinja2.PackageLoader("goldloop.http.dashboard", "templates"),
    autoescape=True,  # every template, whatever its file name
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
formatting.install(templates)
templates.globals["version"] = __version__


class LoginRequired(Exception):
    """No live session: the page answers with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRejected(Exception):
    """A state-changing request without the right CSRF token."""


R = TypeVar("R", bound=Response)


def secure_headers(response: R) -> R:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    session = getattr(request.state, "session", None)
    html = templates.get_template(template).render(
        request_path=request.url.path, session=session, **context
    )
    return secure_headers(HTMLResponse(html, status_code=status_code))


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def local_path(candidate: str | None, default: str = "/") -> str:
    """Only same-site paths are followed after sign-in (no open redirect)."""
    if not candidate or not candidate.startswith("/") or candidate.startswith(("//", "/\\")):
        return default
    if any(ch in candidate for ch in "\r\n\\"):
        return default
    return candidate


def query(base: str, params: Mapping[str, Any]) -> str:
    """``base`` plus a query string of the non-empty ``params``."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{base}?{urlencode(kept)}" if kept else base


def query_keep_empty(base: str, params: Mapping[str, Any], keep: tuple[str, ...] = ()) -> str:
    """Like ``query``, but the names in ``keep`` stay in the URL even when empty."""
    kept = {k: v for k, v in params.items() if v is not None and (v != "" or k in keep)}
    return f"{base}?{urlencode(kept)}" if kept else base


def seg(value: object) -> str:
    """Percent-encode one URL path segment."""
    return quote(str(value), safe="")


def ctx_of(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https" or ctx_of(request).settings.dashboard_secure_cookie


async def current_session(request: Request) -> Session:
    token = request.cookies.get(SESSION_COOKIE)
    session = await run_in_threadpool(sessions.lookup, ctx_of(request), token)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    request.state.session = session
    return session


async def form_fields(request: Request) -> dict[str, str]:
    """The urlencoded form body as a dict (last value wins)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return {}
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True, max_num_fields=1000))


async def checked_form(
    request: Request, session: Annotated[Session, Depends(current_session)]
) -> dict[str, str]:
    """The form of a state-changing request, after checking its CSRF token (else 403)."""
    fields = await form_fields(request)
    presented = fields.pop(CSRF_FIELD, None) or request.headers.get(CSRF_HEADER)
    if not sessions.csrf_ok(session, presented):
        raise CsrfRejected()
    return fields


async def form_lists(request: Request) -> dict[str, list[str]]:
    """The urlencoded form body with every value of a repeated field (checkboxes), in order."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return {}
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=1000)
    except ValueError:
        raise InvalidInput("the form has more than 1,000 fields") from None
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


async def checked_form_lists(
    request: Request, session: Annotated[Session, Depends(current_session)]
) -> dict[str, list[str]]:
    """Like ``checked_form``, keeping repeated fields (a list per name)."""
    fields = await form_lists(request)
    sent = fields.pop(CSRF_FIELD, None)
    presented = sent[-1] if sent else request.headers.get(CSRF_HEADER)
    if not sessions.csrf_ok(session, presented):
        raise CsrfRejected()
    return fields


SignedIn = Annotated[Session, Depends(current_session)]
Form = Annotated[dict[str, str], Depends(checked_form)]
FormLists = Annotated[dict[str, list[str]], Depends(checked_form_lists)]


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code=status, title=title, message=message)


class PageRoute(APIRoute):
    """A route whose failures are HTML pages: sign-in redirects, 403/404/400 pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                return redirect(query("/login", {"next": local_path(exc.next_path, "")}))
            except CsrfRejected:
                return error_page(
                    request,
                    403,
                    "Request refused",
                    "The form's security token is missing or stale. Reload the page and retry.",
                )
            except GoldloopError as exc:
                status = status_for(exc)
                title = {404: "Not found", 403: "Forbidden", 400: "Bad request"}.get(
                    status, "Error"
                )
                return error_page(request, status, title, exc.message)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
                    for err in exc.errors()[:5]
                )
                return error_page(request, 400, "Bad request", problems)

        return page_handler
