"""Datasets: list, examples at a version (add, edit, delete, upload a file), versions and tags,
a diff, and adding a run. Each write to the examples makes one new version."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from goldloop.domain import example_formats, multipart, word_diff
from goldloop.domain.errors import Conflict, InvalidInput, NotFound
from goldloop.domain.langsmith import csv_upload
from goldloop.http.dashboard import attachment_view, web
from goldloop.http.dashboard.run_pages import render_trace
from goldloop.services import dataset_io, dataset_runs, datasets, examples, run_queries
from goldloop.services import sessions as session_service
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
    done: str | None = None,
    example: str | None = None,
    v: int | None = None,
    n_added: int | None = None,
    n_updated: int | None = None,
    n_unchanged: int | None = None,
) -> Response:
    flash: dict[str, Any] = {
        "added": added,
        "updated": updated,
        "done": done if done in DONE_WORDS else None,
        "example": example,
        "written_version": v,
        "imported": None
        if n_added is None
        else {"added": n_added, "updated": n_updated or 0, "unchanged": n_unchanged or 0},
    }
    return _examples_page(request, session, ref, as_of=as_of, after=after, flash=flash)


DONE_WORDS = ("created", "saved", "deleted", "unchanged")


def _examples_page(
    request: Request,
    session: Session,
    ref: str,
    *,
    as_of: str | None = None,
    after: str | None = None,
    problem: str | None = None,
    status_code: int = 200,
    upload: dict[str, str] | None = None,
    flash: dict[str, Any] | None = None,
) -> Response:
    ctx = web.ctx_of(request)
    info = datasets.get(ctx, session.principal, ref)
    try:
        page = examples.list_examples(
            ctx, session.principal, info.row.id, as_of=as_of, limit=PAGE_SIZE, cursor=after
        )
    except (NotFound, InvalidInput) as exc:
        if not as_of:
            raise
        # A mistyped version stays on the dataset page, at its newest version, with the reason.
        problem = f"No version of this dataset matches as_of={as_of!r}: {exc.message}"
        status_code = 404
        page = examples.list_examples(ctx, session.principal, info.row.id, limit=PAGE_SIZE)
    base = _base(info)
    return web.render(
        request,
        "dataset.html",
        status_code=status_code,
        problem=problem,
        info=info,
        base=base,
        version=page.version,
        as_of=as_of or "",
        editable=page.version == info.row.head_version,
        items=page.items,
        next_url=web.query(base, {"as_of": as_of, "after": page.next_cursor})
        if page.next_cursor
        else None,
        upload=upload or {},
        parquet_ok=_parquet_available(),
        files=attachment_view.example_files(
            ctx, session.principal, info.row.id, [i.id for i in page.items]
        ),
        **{**NO_FLASH, **(flash or {})},
    )


NO_FLASH: dict[str, Any] = dict.fromkeys(
    ("added", "updated", "done", "example", "written_version", "imported")
)


def _parquet_available() -> bool:
    try:
        example_formats.load_pyarrow()
    except InvalidInput:
        return False
    return True


# --- one example: add, edit, delete ----------------------------------------------------------

JSON_FIELDS = (("inputs", "Inputs"), ("outputs", "Reference outputs"), ("metadata", "Metadata"))


def _json_text(value: Any) -> str:
    if value is None:
        return ""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _parse_example_form(form: dict[str, str]) -> dict[str, Any]:
    """The example's fields from the form's text areas; bad JSON is an InvalidInput naming the
    field and where the JSON breaks."""
    out: dict[str, Any] = {}
    for name, label in JSON_FIELDS:
        text = form.get(name, "").strip()
        if not text:
            if name == "inputs":
                raise InvalidInput('Inputs are required (a JSON value, e.g. {"question": "…"}).')
            out[name] = None
            continue
        try:
            out[name] = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"{label} is not valid JSON: {exc}") from None
    if out["metadata"] is not None and not isinstance(out["metadata"], dict):
        raise InvalidInput('Metadata must be a JSON object, e.g. {"source": "manual"}.')
    out["splits"] = [s.strip() for s in form.get("splits", "").split(",") if s.strip()] or None
    return out


def _example_form(
    request: Request,
    info: datasets.DatasetInfo,
    *,
    example_id: str | None,
    fields: dict[str, str],
    problem: str | None = None,
) -> Response:
    return web.render(
        request,
        "dataset_example_form.html",
        status_code=400 if problem else 200,
        info=info,
        base=_base(info),
        example_id=example_id,
        fields=fields,
        problem=problem,
    )


@router.get("/datasets/{ref}/examples/new")
def example_new(request: Request, ref: str, session: web.SignedIn) -> Response:
    info = datasets.get(web.ctx_of(request), session.principal, ref)
    fields = {"inputs": "{\n  \n}", "outputs": "", "metadata": "", "splits": ""}
    return _example_form(request, info, example_id=None, fields=fields)


@router.post("/datasets/{ref}/examples")
def example_add(request: Request, ref: str, session: web.SignedIn, form: web.Form) -> Response:
    ctx = web.ctx_of(request)
    info = datasets.get(ctx, session.principal, ref)
    try:
        values = _parse_example_form(form)
        result = examples.add(
            ctx,
            session.principal,
            info.row.id,
            [examples.ExampleIn(**values)],
            message="example added from the dashboard",
        )
    except (InvalidInput, Conflict) as exc:
        return _example_form(request, info, example_id=None, fields=form, problem=exc.message)
    return _written(info, "created", result.added[0], result.version)


@router.get("/datasets/{ref}/examples/{example_id}/edit")
def example_edit(request: Request, ref: str, example_id: str, session: web.SignedIn) -> Response:
    ctx = web.ctx_of(request)
    info = datasets.get(ctx, session.principal, ref)
    _, ex = examples.get(ctx, session.principal, info.row.id, example_id)
    fields = {
        "inputs": _json_text(ex.inputs),
        "outputs": _json_text(ex.outputs),
        "metadata": _json_text(ex.metadata),
        "splits": ", ".join(ex.splits or []),
    }
    return _example_form(request, info, example_id=ex.id, fields=fields)


@router.post("/datasets/{ref}/examples/{example_id}")
def example_save(
    request: Request, ref: str, example_id: str, session: web.SignedIn, form: web.Form
) -> Response:
    ctx = web.ctx_of(request)
    info = datasets.get(ctx, session.principal, ref)
    try:
        values = _parse_example_form(form)
        result, _ = examples.update(
            ctx,
            session.principal,
            info.row.id,
            example_id,
            values,
            message="example edited from the dashboard",
        )
    except InvalidInput as exc:
        return _example_form(request, info, example_id=example_id, fields=form, problem=exc.message)
    return _written(info, "saved" if result.changed else "unchanged", example_id, result.version)


@router.get("/datasets/{ref}/examples/{example_id}/delete")
def example_delete_confirm(
    request: Request, ref: str, example_id: str, session: web.SignedIn
) -> Response:
    ctx = web.ctx_of(request)
    info = datasets.get(ctx, session.principal, ref)
    _, ex = examples.get(ctx, session.principal, info.row.id, example_id)
    return web.render(request, "dataset_example_delete.html", info=info, base=_base(info), ex=ex)


@router.post("/datasets/{ref}/examples/{example_id}/delete")
def example_delete(
    request: Request, ref: str, example_id: str, session: web.SignedIn, form: web.Form
) -> Response:
    ctx = web.ctx_of(request)
    info = datasets.get(ctx, session.principal, ref)
    result = examples.delete(
        ctx,
        session.principal,
        info.row.id,
        [example_id],
        message="example deleted from the dashboard",
    )
    return _written(info, "deleted", example_id, result.version)


def _written(info: datasets.DatasetInfo, done: str, example_id: str, version: int) -> Response:
    anchor = "" if done == "deleted" else f"#ex-{web.seg(example_id)}"
    target = web.query(_base(info), {"done": done, "example": example_id, "v": version})
    return web.redirect(target + anchor)


# --- upload a file ---------------------------------------------------------------------------


async def _multipart_form(
    request: Request, session: Session
) -> tuple[dict[str, str], bytes | None]:
    """The text fields and the ``file`` part of a multipart form, after the CSRF check."""
    limit = web.ctx_of(request).settings.max_request_bytes
    body = await request.body()
    if len(body) > limit:
        raise InvalidInput(f"the upload is larger than the server's limit of {limit:,} bytes")
    try:
        parts = multipart.parse(body, request.headers.get("content-type", ""))
    except multipart.MultipartError as exc:
        raise InvalidInput(f"the upload is not a readable form: {exc}") from None
    fields: dict[str, str] = {}
    file: bytes | None = None
    for part in parts:
        if part.name == "file":
            file = part.data
        else:
            fields[part.name] = part.data.decode("utf-8", errors="replace")
    if not session_service.csrf_ok(session, fields.pop(web.CSRF_FIELD, None)):
        raise web.CsrfRejected()
    return fields, file


def _sniff(data: bytes) -> str:
    """The format of an upload sent with "detect": Parquet by its magic bytes, JSONL when it
    starts with an object, else CSV."""
    if data.startswith(b"PAR1"):
        return "parquet"
    return "jsonl" if data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") else "csv"


def _keys(text: str) -> list[str]:
    return [k.strip() for k in text.split(",") if k.strip()]


def _import(
    ctx: Any, who: Any, dataset_id: str, fields: dict[str, str], file: bytes | None
) -> examples.WriteResult:
    if not file:
        raise InvalidInput("Choose a file to upload (JSONL, CSV or Parquet).")
    fmt = fields.get("format", "") or _sniff(file)
    example_formats.check_format(fmt)
    message = f"uploaded {fmt.upper()} from the dashboard"
    input_keys, output_keys = (
        _keys(fields.get("input_keys", "")),
        _keys(fields.get("output_keys", "")),
    )
    if fmt == "csv" and input_keys:
        rows = csv_upload.parse(file, input_keys, output_keys)
        items = [examples.ExampleIn(inputs=r.inputs, outputs=r.outputs) for r in rows]
        if not items:
            raise InvalidInput("The CSV file has no rows.")
        return examples.add(ctx, who, dataset_id, items, message=message)
    if output_keys:
        raise InvalidInput("Output columns need input columns too (CSV only).")
    return dataset_io.import_file(ctx, who, dataset_id, file, fmt, message=message)


@router.post("/datasets/{ref}/upload")
async def dataset_upload(request: Request, ref: str, session: web.SignedIn) -> Response:
    fields, file = await _multipart_form(request, session)
    ctx = web.ctx_of(request)
    info = await run_in_threadpool(datasets.get, ctx, session.principal, ref)
    try:
        result = await run_in_threadpool(_import, ctx, session.principal, info.row.id, fields, file)
    except (InvalidInput, Conflict) as exc:
        problem = f"Nothing was imported: {exc.message}"
        return await run_in_threadpool(
            lambda: _examples_page(
                request, session, ref, problem=problem, status_code=400, upload=fields
            )
        )
    params = {
        "v": result.version,
        "n_added": len(result.added),
        "n_updated": len(result.updated),
        "n_unchanged": len(result.unchanged),
    }
    return web.redirect(f"{_base(info)}?{urlencode(params)}")


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

    changed = [
        (old_ex, new_ex, _field_diffs(old_ex, new_ex))
        for old_ex, new_ex in zip(
            at(diff.from_version, diff.changed),
            at(diff.to_version, diff.changed),
            strict=True,
        )
    ]
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


DIFF_FIELDS = (
    ("inputs", "Inputs"),
    ("outputs", "Reference outputs"),
    ("metadata", "Metadata"),
    ("splits", "Splits"),
)


def _field_diffs(old: Any, new: Any) -> list[tuple[str, list[word_diff.Segment]]]:
    """For each field that differs between two versions of an example, its word diff (over
    pretty-printed JSON with sorted keys, so only real changes are marked)."""

    def text(value: Any) -> str:
        if value is None:
            return ""
        return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()

    out = []
    for name, label in DIFF_FIELDS:
        before, after = text(getattr(old, name)), text(getattr(new, name))
        if before != after:
            out.append((label, word_diff.word_diff(before, after)))
    return out


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
