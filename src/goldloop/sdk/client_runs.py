"""Client methods for runs and traces: ingest, read, list, statistics, export and import.

Mixed into ``goldloop.client.Client``; see docs/query-api.md and docs/ingestion.md. Reading
returns the JSON the API answers. The bulk calls (``ingest_runs``, ``import_traces``) send in
chunks and wait out a full server (``503`` with ``Retry-After``) a few times before raising, as
the tracing exporter does; nothing is counted as sent before the server acknowledged it.

    from goldloop.client import Client

    with Client() as gl:                                   # GOLDLOOP_ENDPOINT, GOLDLOOP_API_KEY
        gl.ingest_runs([{"id": "r1", "trace_id": "r1", "name": "answer"}], project="support")
        slow = gl.list_runs(project="support", filter="root and latency > 10s", light=True)
        with open("failing.jsonl", "wb") as out:
            for line in gl.export_traces("support", filter="status = \"error\"",
                                         whole_traces=True):
                out.write(line + b"\\n")
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from goldloop.sdk.client_base import ClientPlumbing, Doc, error_of, retry_after_s
from goldloop.sdk.client_base import segment as _p

INGEST_CHUNK = 500  # runs per /runs/batch request
RETRIES_WHEN_FULL = 5  # 503 answers waited out per request before ApiError
MAX_RETRY_AFTER_S = 30.0


@dataclass(frozen=True)
class ImportResult:
    """What ``import_traces`` sent: request lines, and spans the server rejected (with why)."""

    batches: int
    rejected_spans: int
    errors: tuple[str, ...] = ()


class RunsMixin(ClientPlumbing):
    """``/runs``, ``/traces``, ``/projects/{id}/stats``, ``/projects/{id}/export`` and the
    ingestion endpoints (``/runs/batch``, OTLP ``/v1/traces``)."""

    # --- ingestion -----------------------------------------------------------------------

    def _send_when_room(
        self, path: str, *, content: bytes, headers: Mapping[str, str]
    ) -> httpx.Response:
        """POST ``content``, waiting out up to ``RETRIES_WHEN_FULL`` 503 answers for as long as
        their ``Retry-After`` says (at most ``MAX_RETRY_AFTER_S``); ``ApiError`` otherwise."""
        for attempt in range(RETRIES_WHEN_FULL + 1):
            response = self._http.post(path, content=content, headers=dict(headers))
            if response.status_code == 503 and attempt < RETRIES_WHEN_FULL:
                asked = retry_after_s(response)
                time.sleep(min(1.0 if asked is None else max(asked, 0.1), MAX_RETRY_AFTER_S))
                continue
            if response.status_code >= 400:
                raise error_of(response)
            return response
        raise AssertionError("unreachable")

    def ingest_runs(self, runs: Sequence[Mapping[str, Any]], *, project: str | None = None) -> int:
        """Create or update runs through ``POST /runs/batch`` (upsert by id: see
        docs/ingestion.md), ``INGEST_CHUNK`` per request. Returns how many the server
        acknowledged, i.e. committed; a rejected chunk raises ``ApiError`` naming the field and
        the run, after the chunks before it were stored."""
        redactor = getattr(self, "redactor", None)
        if redactor is not None:
            runs = [redactor.run(dict(run)) for run in runs]
        accepted = 0
        for i in range(0, len(runs), INGEST_CHUNK):
            body: Doc = {"runs": list(runs[i : i + INGEST_CHUNK])}
            if project is not None:
                body["project"] = project
            response = self._send_when_room(
                "/runs/batch",
                content=orjson.dumps(body),
                headers={"content-type": "application/json"},
            )
            accepted += int(response.json()["accepted"])
        return accepted

    # --- reading -------------------------------------------------------------------------

    def get_run(self, run_id: str) -> Doc:
        return self._obj("GET", f"/runs/{_p(run_id)}")

    def get_trace(self, trace_id: str, *, light: bool = False) -> Doc:
        """The trace as a flat pre-order tree: ``runs`` with ``depth`` and ``children``."""
        params = {"select": "light" if light else "full"}
        return self._obj("GET", f"/traces/{_p(trace_id)}", params=params)

    def list_runs(
        self,
        *,
        project: str | None = None,
        filter: str | None = None,
        sort: str = "start_time",
        order: str = "desc",
        limit: int = 50,
        cursor: str | None = None,
        light: bool = False,
    ) -> Doc:
        """One page: ``{"items": [...], "next_cursor": ...}`` (docs/filters.md)."""
        body = {
            "project": project,
            "filter": filter,
            "sort": sort,
            "order": order,
            "limit": limit,
            "cursor": cursor,
            "select": "light" if light else "full",
        }
        return self._obj("POST", "/runs/query", json=body)

    def iter_runs(
        self,
        *,
        project: str | None = None,
        filter: str | None = None,
        sort: str = "start_time",
        order: str = "desc",
        page_size: int = 200,
        light: bool = False,
    ) -> Iterator[Doc]:
        """Every matching run, page after page (keyset pagination: nothing skipped or repeated)."""
        cursor = None
        while True:
            page = self.list_runs(
                project=project,
                filter=filter,
                sort=sort,
                order=order,
                limit=page_size,
                cursor=cursor,
                light=light,
            )
            yield from page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return

    def project_stats(
        self,
        project: str,
        *,
        bucket: str = "1h",
        start: str | int | None = None,
        end: str | int | None = None,
        filter: str | None = None,
    ) -> Doc:
        """Per-bucket count, errors, error rate, latency p50/p95/p99/avg, tokens and cost of a
        project (id or name)."""
        params = {"bucket": bucket, "start": start, "end": end, "filter": filter}
        clean = {k: str(v) for k, v in params.items() if v is not None}
        return self._obj("GET", f"/projects/{_p(project)}/stats", params=clean)

    def list_threads(
        self,
        project: str,
        *,
        start: str | int | None = None,
        end: str | int | None = None,
        page_size: int = 100,
    ) -> Iterator[Doc]:
        """Every conversation thread of a project (id or name), most recently active first:
        run, turn and error counts, first and last time. ``start``/``end`` keep only the runs
        that started in that range."""
        params = {"limit": page_size, "start": start, "end": end}
        clean = {k: str(v) for k, v in params.items() if v is not None}
        return self._pages(f"/projects/{_p(project)}/threads", clean)

    def get_thread(self, project: str, thread_id: str, *, offset: int = 0, limit: int = 200) -> Doc:
        """One thread as a conversation: its summary and its turns in order, each with the
        trace id, inputs and outputs of the turn's root run."""
        return self._obj(
            "GET",
            f"/projects/{_p(project)}/threads/{_p(thread_id)}",
            params={"offset": offset, "limit": limit},
        )

    def list_projects(self, *, page_size: int = 100) -> Iterator[Doc]:
        return self._pages("/projects", {"limit": page_size})

    def get_project(self, project_id: str) -> Doc:
        return self._obj("GET", f"/projects/{_p(project_id)}")

    def delete_project(self, project_id: str) -> Doc:
        """Delete a project and its runs (an admin key): ``{"runs_deleted": n, ...}``."""
        return self._obj("DELETE", f"/projects/{_p(project_id)}")

    def find_project(self, name: str) -> Doc | None:
        """The project with this name, or None."""
        items = self._obj("GET", "/projects", params={"name": name})["items"]
        return items[0] if items else None

    # --- export and import ---------------------------------------------------------------

    def export_traces(
        self, project: str, *, filter: str | None = None, whole_traces: bool = False
    ) -> Iterator[bytes]:
        """The project's runs (id or name), or those matching ``filter`` (with
        ``whole_traces``: every run of each trace that has a match), as OTLP/JSON lines, one
        ``ExportTraceServiceRequest`` each, streamed as they arrive. An unknown project or an
        invalid filter raises ``ApiError`` when iteration starts, before any line."""
        params: Doc = {}
        if filter:
            params["filter"] = filter
        if whole_traces:
            params["whole_traces"] = "true"
        with self._http.stream("GET", f"/projects/{_p(project)}/export", params=params) as response:
            if response.status_code >= 400:
                response.read()
                raise error_of(response)
            yield from _lines(response.iter_bytes())

    def import_traces(self, lines: Iterable[bytes], *, project: str | None = None) -> ImportResult:
        """Post each OTLP/JSON line (e.g. from ``export_traces``) to ``/v1/traces``, into
        ``project`` if given (else the ``service.name`` each line names). Returns the batches
        sent and the spans the server rejected (``partialSuccess``)."""
        headers = {"content-type": "application/json"}
        if project:
            headers["x-goldloop-project"] = project
        batches = rejected = 0
        errors: list[str] = []
        for raw in lines:
            line = raw.strip()
            if not line:
                continue
            response = self._send_when_room(
                f"{self.endpoint}/v1/traces", content=line, headers=headers
            )
            partial = response.json().get("partialSuccess") or {}
            if partial.get("rejectedSpans"):
                rejected += int(partial["rejectedSpans"])
                errors.append(str(partial.get("errorMessage", "")))
            batches += 1
        return ImportResult(batches, rejected, tuple(errors))


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The non-blank lines of a byte stream, without their newline."""
    parts: list[bytes] = []
    for chunk in chunks:
        while (cut := chunk.find(b"\n")) >= 0:
            parts.append(chunk[:cut])
            line = b"".join(parts)
            parts = []
            if line.strip():
                yield line
            chunk = chunk[cut + 1 :]
        if chunk:
            parts.append(chunk)
    tail = b"".join(parts)
    if tail.strip():
        yield tail
