"""Datasets: list, examples at a version, versions and tags, a diff, and adding a run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from goldloop.domain.errors import Conflict, InvalidInput, NotFound
from goldloop.http.dashboard import attachment_view, web
from goldloop.http.dashboard.run_pages import render_trace
from goldloop.services import dataset_runs, datasets, examples, run_queries
from goldloop.services.sessions import Session

router = APIRouter(route_class=web.PageRoute, include_in_schema=False)

PAGE_SIZE = 50
DIFF_SHOWN = 50


def _base(info: datasets.DatasetInfo) -> str:
    return f"/datasets/{web.seg(info.row.id)}"


@router.get("/datasets")
def dataset_list(request: Request, session: web.SignedIn, after: str | None = None) -> Response:
    page = datasets.list_datasets(web.ctx_of(request), session.principal, cursor=after)
    next_url = web.query("/datasets", {"after": page.next_cursor}) if page.next_cursor else None
    return web.render(
        request, "datasets.html", items=page.items, next_url=next_url, problem=None, name=""
    )


@router.post("/datasets")
def dataset_create(request: Request, session: web.SignedIn, form: web.Form) -> Response:
    ctx = web.ctx_of(request)
    name = form.get("name", "").strip()
    try:
        info = datasets.create(
            ctx, session.principal, name, description=form.get("description", "").strip() or None
        )
    except (InvalidInput, Conflict) as exc:
        page = datasets.list_datasets(ctx, session.principal)
        return web.render(
            request,
            "datasets.html",
            status_code=400,
            items=page.items,
            next_url=None,
            problem=exc.message,
            name=name,
        )
    return web.redirect(_base(info))


@router.get("/datasets/{ref}")
def dataset_examples(
    request: Request,
    ref: str,
    session: web.SignedIn,
    as_of: str | None = None,
    after: str | None = None,
    added: str | None = None,
    updated: str | None = None,
) -> Response:
    ctx = web.ctx_of(request)
    info = datasets.get(ctx, session.principal, ref)
    problem = None
    try:
        page = examples.list_examples(
            ctx, session.principal, info.row.id, as_of=as_of, limit=PAGE_SIZE, cursor=after
        )
    except (NotFound, InvalidInput) as exc:
        if not as_of:
            raise
        # A mistyped version stays on the dataset page, at its newest version, with the reason.
        problem = f"No version of this dataset matches as_of={as_of!r}: {exc.message}"
        page = examples.list_examples(ctx, session.principal, info.row.id, limit=PAGE_SIZE)
    base = _base(info)
    return web.render(
        request,
        "dataset.html",
        status_code=404 if problem else 200,
        problem=problem,
        info=info,
        base=base,
        version=page.version,
        as_of=as_of or "",
        items=page.items,
        next_url=web.query(base, {"as_of": as_of, "after": page.next_cursor})
        if page.next_cursor
        else None,
        added=added,
        updated=updated,
        files=attachment_view.example_files(
            ctx, session.principal, info.row.id, [i.id for i in page.items]
        ),
    )


@router.get("/datasets/{ref}/versions")
def dataset_versions(request: Request, ref: str, session: web.SignedIn) -> Response:
    return _versions_page(request, session, ref)


def _versions_page(
    request: Request,
    session: Session,
    ref: str,
    problem: str | None = None,
    status_code: int = 400,
) -> Response:
    ctx = web.ctx_of(request)
    info = datasets.get(ctx, session.principal, ref)
    versions, _ = datasets.list_versions(ctx, session.principal, info.row.id, limit=200)
    return web.render(
        request,
        "dataset_versions.html",
        status_code=status_code if problem else 200,
        info=info,
        base=_base(info),
        versions=versions,
        problem=problem,
    )


@router.post("/datasets/{ref}/tags")
def dataset_tag(request: Request, ref: str, session: web.SignedIn, form: web.Form) -> Response:
    ctx = web.ctx_of(request)
    info = datasets.get(ctx, session.principal, ref)
    try:
        datasets.set_tag(
            ctx,
            session.principal,
            info.row.id,
            form.get("tag", "").strip(),
            form.get("version", "").strip() or None,
        )
    except InvalidInput as exc:
        return _versions_page(request, session, ref, exc.message)
    return web.redirect(f"{_base(info)}/versions")


@router.get("/datasets/{ref}/diff")
def dataset_diff(
    request: Request,
    ref: str,
    session: web.SignedIn,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
) -> Response:
    ctx = web.ctx_of(request)
    who = session.principal
    info = datasets.get(ctx, who, ref)
    old = from_ or str(max(info.row.head_version - 1, 0))
    new = to or str(info.row.head_version)
    try:
        diff = datasets.diff(ctx, who, info.row.id, old, new)
    except (NotFound, InvalidInput) as exc:
        # Stay among the versions (where the user picks them), with the reason.
        problem = f"Cannot compare version {old!r} with {new!r}: {exc.message}"
        status = 404 if isinstance(exc, NotFound) else 400
        return _versions_page(request, session, ref, problem, status_code=status)

    def at(version: int, example_ids: list[str]) -> list[Any]:
        return [
            examples.get(ctx, who, info.row.id, i, str(version))[1]
            for i in example_ids[:DIFF_SHOWN]
        ]

    changed = list(
        zip(
            at(diff.from_version, diff.changed),
            at(diff.to_version, diff.changed),
            strict=True,
        )
    )
    return web.render(
        request,
        "dataset_diff.html",
        info=info,
        base=_base(info),
        diff=diff,
        added=at(diff.to_version, diff.added),
        removed=at(diff.from_version, diff.removed),
        changed=changed,
        shown=DIFF_SHOWN,
    )


@router.post("/runs/{run_id}/dataset")
def add_run_to_dataset(
    request: Request, run_id: str, session: web.SignedIn, form: web.Form
) -> Response:
    """Add the run as an example; its reference output is the latest correction if any. A run
    already in the dataset takes a correction its example has not taken yet (prefer
    correction)."""
    ctx = web.ctx_of(request)
    who = session.principal
    run = run_queries.get_run(ctx, who, run_id)
    name = form.get("dataset", "").strip()
    prefer = form.get("prefer_correction") == "on"
    try:
        if not name:
            raise InvalidInput("choose or name a dataset", details={"field": "dataset"})
        try:
            info = datasets.get(ctx, who, name)
        except NotFound:
            info = datasets.create(ctx, who, name)
        result = dataset_runs.add_runs(
            ctx,
            who,
            info.row.id,
            [run["id"]],
            prefer_correction=prefer,
            message=f"added run {run['id']} from the dashboard",
        )
    except (InvalidInput, Conflict) as exc:
        return render_trace(
            request, session, run["trace_id"], run["id"], dataset_problem=exc.message
        )
    if result.skipped:
        skipped = result.skipped[0]
        if skipped.reason != "already_added":
            why = "an example with the same inputs is already in the dataset"
        elif prefer:
            why = "this run is already in the dataset, with no correction its example has not taken"
        else:
            why = "this run is already in the dataset"
        return render_trace(
            request,
            session,
            run["trace_id"],
            run["id"],
            dataset_problem=f"Not added: {why} (example {skipped.example_id}).",
        )
    if result.updated:
        return web.redirect(web.query(_base(info), {"updated": result.updated[0].example_id}))
    return web.redirect(
        web.query(_base(info), {"added": result.added[0].example_id if result.added else None})
    )
