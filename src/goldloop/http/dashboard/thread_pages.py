"""Threads and users of a project: the thread list, one thread read as a conversation turn by
turn, and the project's end users with a link to their runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from goldloop.domain.errors import InvalidInput
from goldloop.http.dashboard import web
from goldloop.http.dashboard.chat_view import ChatMessage, Part, as_chat
from goldloop.http.dashboard.run_pages import filter_string
from goldloop.services import projects
from goldloop.services import threads as svc

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)

PAGE_SIZE = 50
TURNS_PER_PAGE = 100
MAX_OFFSET = 1_000_000_000
PREVIEW_CHARS = 160

# Keys whose string value is what the user said / what the agent answered, in that order.
_INPUT_KEYS = ("question", "input", "query", "message", "text", "content", "prompt", "user_input")
_OUTPUT_KEYS = ("answer", "output", "response", "text", "content", "result", "reply")


@dataclass
class Side:
    """One side of a turn: chat messages when the value reads as text or messages, else the
    raw value (shown as JSON)."""

    messages: list[ChatMessage] | None
    value: Any


def _plain_text(value: Any, keys: tuple[str, ...]) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in keys:
            if isinstance(value.get(key), str):
                return str(value[key])
        strings = [v for v in value.values() if isinstance(v, str)]
        if len(value) == 1 and strings:
            return strings[0]
    return None


def _latest_user_turn(messages: list[ChatMessage]) -> list[ChatMessage]:
    """The messages after the last assistant message: what is new in this turn (the earlier
    ones repeat the conversation the previous turns already show)."""
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
    fresh = [m for m in messages[last + 1 :] if m.role != "system"]
    return fresh or messages[-1:]


def input_side(value: Any) -> Side:
    chat = as_chat(value)
    if chat is not None and not chat.rest:
        return Side(_latest_user_turn(chat.messages), value)
    text = _plain_text(value, _INPUT_KEYS)
    if text is not None:
        return Side([ChatMessage("user", [Part("text", text=text)])], value)
    return Side(None, value)


def output_side(value: Any) -> Side:
    chat = as_chat(value)
    if chat is not None and not chat.rest:
        return Side(chat.messages, value)
    text = _plain_text(value, _OUTPUT_KEYS)
    if text is not None:
        return Side([ChatMessage("assistant", [Part("text", text=text)])], value)
    return Side(None, value)


def preview(inputs: Any) -> str | None:
    """The first user words of a turn's input, shortened, as plain text."""
    side = input_side(inputs)
    if side.messages is None:
        return None
    text = " ".join(p.text for m in side.messages for p in m.parts if p.kind == "text" and p.text)
    text = " ".join(text.split())
    if not text:
        return None
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


@router.get("/projects/{project_id}/threads")
def thread_list(
    request: Request, project_id: str, session: web.SignedIn, cursor: str | None = None
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    project = projects.get(ctx, who, project_id)
    base = f"/projects/{web.seg(project.id)}/threads"
    problem = None
    items: list[dict[str, Any]] = []
    next_cursor = None
    try:
        page = svc.list_threads(ctx, who, project.id, limit=PAGE_SIZE, cursor=cursor)
        items, next_cursor = page["items"], page["next_cursor"]
    except InvalidInput as exc:
        problem = exc.message
    firsts = svc.first_inputs(ctx, who, project.id, [t["thread_id"] for t in items])
    for item in items:
        item["preview"] = preview(firsts.get(item["thread_id"]))
    return web.render(
        request,
        "threads.html",
        status_code=400 if problem else 200,
        project=project,
        threads=items,
        problem=problem,
        next_url=web.query(base, {"cursor": next_cursor}) if next_cursor else None,
        first_url=base if cursor else None,
    )


@router.get("/projects/{project_id}/threads/{thread_id:path}")
def thread_page(
    request: Request,
    project_id: str,
    thread_id: str,
    session: web.SignedIn,
    offset: int = Query(default=0, ge=0, le=MAX_OFFSET),
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    project = projects.get(ctx, who, project_id)
    thread = svc.get_thread(ctx, who, project.id, thread_id, offset=offset, limit=TURNS_PER_PAGE)
    turns = [
        {**t, "ask": input_side(t["inputs"]), "answer": output_side(t["outputs"])}
        for t in thread["turns"]
    ]
    base = f"/projects/{web.seg(project.id)}/threads/{web.seg(thread_id)}"
    more = len(turns) == TURNS_PER_PAGE and offset + len(turns) < thread["turn_count"]
    return web.render(
        request,
        "thread.html",
        project=project,
        thread=thread,
        turns=turns,
        first_number=offset + 1,
        next_url=web.query(base, {"offset": offset + TURNS_PER_PAGE}) if more else None,
        first_url=base if offset else None,
    )


@router.get("/projects/{project_id}/users")
def user_list(
    request: Request, project_id: str, session: web.SignedIn, cursor: str | None = None
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    project = projects.get(ctx, who, project_id)
    base = f"/projects/{web.seg(project.id)}/users"
    problem = None
    items: list[dict[str, Any]] = []
    next_cursor = None
    try:
        page = svc.list_users(ctx, who, project.id, limit=PAGE_SIZE, cursor=cursor)
        items, next_cursor = page["items"], page["next_cursor"]
    except InvalidInput as exc:
        problem = exc.message
    runs = f"/projects/{web.seg(project.id)}/runs"
    for item in items:
        user = filter_string(item["user_id"])
        item["runs_url"] = web.query(runs, {"filter": f"user_id = {user}"})
        item["traces_url"] = web.query(runs, {"filter": f"root and user_id = {user}"})
    return web.render(
        request,
        "users.html",
        status_code=400 if problem else 200,
        project=project,
        users=items,
        problem=problem,
        next_url=web.query(base, {"cursor": next_cursor}) if next_cursor else None,
        first_url=base if cursor else None,
    )
