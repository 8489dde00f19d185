"""FastAPI dependencies: the service context and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from goldloop.domain.errors import Forbidden
from goldloop.services import auth
from goldloop.services.context import Principal, ServiceContext


def get_ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def key_from(x_api_key: str | None, authorization: str) -> str | None:
    """The API key of the ``x-api-key`` header, else of ``Authorization: Bearer``."""
    if x_api_key:
        return x_api_key
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def presented_key(request: Request) -> str | None:
    return key_from(request.headers.get("x-api-key"), request.headers.get("authorization", ""))


async def get_principal(request: Request) -> Principal:
    known = getattr(request.state, "principal", None)  # checked by RequestGuardMiddleware
    if isinstance(known, Principal):
        return known
    ctx = get_ctx(request)
    principal = await run_in_threadpool(auth.authenticate, ctx, presented_key(request))
    request.state.principal = principal
    return principal


async def get_admin(request: Request) -> Principal:
    """The principal, who must hold an admin key: for what reaches outside Goldloop (rules,
    alert rules and channels make outgoing requests and spend judge budget) or deletes a
    project's or a dataset's history."""
    principal = await get_principal(request)
    if not principal.is_admin:
        raise Forbidden("this needs an admin API key (goldloop keys create --role admin)")
    return principal


Ctx = Annotated[ServiceContext, Depends(get_ctx)]
Who = Annotated[Principal, Depends(get_principal)]
Admin = Annotated[Principal, Depends(get_admin)]
