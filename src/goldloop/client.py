"""A plain API client for Goldloop: runs and traces (ingest, query, statistics, export and
import), feedback, feedback keys, datasets, examples, versions, experiments, automation rules
and alerts.

    from goldloop.client import Client
    client = Client("http://127.0.0.1:8700", api_key="gl_...")
    client.create_feedback(run_id=run_id, key="correctness", score=0,
                           correction={"label": "non-refundable"})

``endpoint`` and ``api_key`` default to ``GOLDLOOP_ENDPOINT`` and ``GOLDLOOP_API_KEY``, read once
when the client is made. Every method is one HTTP call (list methods page through all results
lazily); a 4xx/5xx raises ``ApiError`` with the server's code, message and details. Needs only
httpx and orjson.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any, cast

import httpx
import orjson

from goldloop.sdk.client_automation import AutomationMixin
from goldloop.sdk.client_base import ApiError, error_of
from goldloop.sdk.client_base import segment as _p
from goldloop.sdk.client_experiments import ExperimentsMixin
from goldloop.sdk.client_queues import QueuesMixin
from goldloop.sdk.client_redaction import RedactionMixin
from goldloop.sdk.client_retention import RetentionMixin
from goldloop.sdk.client_runs import ImportResult, RunsMixin
from goldloop.sdk.redaction import EXAMPLE_FIELDS, FEEDBACK_FIELDS, RunRedactor, as_redactor

DEFAULT_ENDPOINT = "http://127.0.0.1:8700"
_UNSET: Any = object()

__all__ = ["ApiError", "Client", "ImportResult"]


def _clean(params: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        if v is None:
            continue
        out[k] = ("true" if v else "false") if isinstance(v, bool) else v
    return out


class Client(
    RunsMixin, AutomationMixin, ExperimentsMixin, RetentionMixin, RedactionMixin, QueuesMixin
):
    """One Goldloop server, one API key. Thread-safe (one pooled ``httpx.Client``)."""

    def __init__(
        self,
        endpoint: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        redact: RunRedactor | Mapping[str, Any] | None = None,
    ) -> None:
        """``redact``: a redaction configuration (the server's format, see
        ``goldloop.sdk.redaction``) applied to the runs, feedback and examples this client
        sends, before they leave the process."""
        self.redactor = as_redactor(redact)
        self.endpoint = (
            endpoint or os.environ.get("GOLDLOOP_ENDPOINT") or DEFAULT_ENDPOINT
        ).rstrip("/")
        key = api_key or os.environ.get("GOLDLOOP_API_KEY")
        headers = {"x-api-key": key} if key else {}
        self._http = httpx.Client(
            base_url=self.endpoint + "/api/v1",
            headers=headers,
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = _UNSET,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        send_headers = dict(headers or {})
        if json is not _UNSET:
            content = orjson.dumps(json)
            send_headers["content-type"] = "application/json"
        response = self._http.request(
            method, path, params=_clean(params or {}), content=content, headers=send_headers
        )
        if response.status_code >= 400:
            raise error_of(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return orjson.loads(self._request(method, path, **kwargs).content)

    def _obj(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return cast(dict[str, Any], self._json(method, path, **kwargs))

    def _pages(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            page = self._json("GET", path, params={**params, "cursor": cursor})
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # --- feedback ------------------------------------------------------------------------

    def create_feedback(
        self,
        run_id: str | None = None,
        key: str | None = None,
        *,
        trace_id: str | None = None,
        score: float | bool | None = None,
        value: Any = None,
        comment: str | None = None,
        correction: Any = None,
        source: str = "api",
        source_info: dict[str, Any] | None = None,
        feedback_id: str | None = None,
    ) -> dict[str, Any]:
        """Score or correct a run (or a trace); the run need not have arrived yet. With a
        ``feedback_id`` a retry is harmless (same id and body -> same feedback)."""
        if key is None:
            raise TypeError("create_feedback() needs a key, e.g. key='correctness'")
        body = {
            "run_id": run_id,
            "trace_id": trace_id,
            "key": key,
            "score": score,
            "value": value,
            "comment": comment,
            "correction": correction,
            "source": source,
            "source_info": source_info,
            "feedback_id": feedback_id,
        }
        if self.redactor is not None:
            body = self.redactor.fields(body, FEEDBACK_FIELDS)
        return self._obj("POST", "/feedback", json=body)

    def get_feedback(self, feedback_id: str) -> dict[str, Any]:
        return self._obj("GET", f"/feedback/{_p(feedback_id)}")

    def update_feedback(self, feedback_id: str, **changes: Any) -> dict[str, Any]:
        """Change e.g. ``score=``, ``correction=``, ``comment=`` (None clears a field)."""
        if self.redactor is not None:
            changes = self.redactor.fields(changes, FEEDBACK_FIELDS)
        return self._obj("PATCH", f"/feedback/{_p(feedback_id)}", json=changes)

    def delete_feedback(self, feedback_id: str) -> None:
        """Delete a feedback; what it was stays in its history."""
        self._request("DELETE", f"/feedback/{_p(feedback_id)}")

    def feedback_history(self, feedback_id: str) -> list[dict[str, Any]]:
        """Every edit and the deletion of a feedback, oldest first: ``action``, ``changed_at``,
        ``changed_by`` (API key id), ``changed_by_name`` and ``old`` (the fields before)."""
        doc = self._obj("GET", f"/feedback/{_p(feedback_id)}/history")
        return cast(list[dict[str, Any]], doc["items"])

    def list_feedback(
        self,
        *,
        run_id: str | None = None,
        trace_id: str | None = None,
        key: str | None = None,
        source: str | None = None,
        since: str | int | None = None,
        until: str | int | None = None,
        has_correction: bool | None = None,
        page_size: int = 100,
    ) -> Iterator[dict[str, Any]]:
        params = {
            "run_id": run_id,
            "trace_id": trace_id,
            "key": key,
            "source": source,
            "since": since,
            "until": until,
            "has_correction": has_correction,
            "limit": page_size,
        }
        return self._pages("/feedback", params)

    def export_feedback(self, *, format: str = "jsonl", **filters: Any) -> bytes:
        """All feedback matching the list filters, as JSONL or Parquet bytes."""
        params = {"format": format, **filters}
        return self._request("GET", "/feedback-export", params=params).content

    def declare_feedback_key(
        self,
        key: str,
        kind: str,
        *,
        min: float | None = None,
        max: float | None = None,
        categories: list[str | dict[str, Any]] | list[str] | list[dict[str, Any]] | None = None,
        description: str | None = None,
        rubric: str | None = None,
        correction_expected: bool = False,
        lower_is_better: bool = False,
    ) -> dict[str, Any]:
        """Declare a score config (admin key): ``kind`` = continuous (``min``/``max``),
        categorical (``categories``: labels, or ``{"label", "score"}`` dicts), boolean or
        freeform; ``rubric`` is what reviewers read. Redeclaring replaces it."""
        body = {
            "kind": kind,
            "min": min,
            "max": max,
            "categories": categories,
            "description": description,
            "rubric": rubric,
            "correction_expected": correction_expected,
            "lower_is_better": lower_is_better,
        }
        return self._obj("PUT", f"/feedback-keys/{_p(key)}", json=body)

    def get_feedback_key(self, key: str) -> dict[str, Any]:
        return self._obj("GET", f"/feedback-keys/{_p(key)}")

    def list_feedback_keys(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._obj("GET", "/feedback-keys")["items"])

    def delete_feedback_key(self, key: str) -> None:
        self._request("DELETE", f"/feedback-keys/{_p(key)}")

    # --- datasets ------------------------------------------------------------------------

    def create_dataset(
        self,
        name: str,
        *,
        description: str | None = None,
        inputs_schema: dict[str, Any] | None = None,
        outputs_schema: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = {
            "name": name,
            "description": description,
            "inputs_schema": inputs_schema,
            "outputs_schema": outputs_schema,
        }
        return self._obj("POST", "/datasets", json=body)

    def get_dataset(self, dataset: str) -> dict[str, Any]:
        """By id or by name."""
        return self._obj("GET", f"/datasets/{_p(dataset)}")

    def list_datasets(self, *, page_size: int = 100) -> Iterator[dict[str, Any]]:
        return self._pages("/datasets", {"limit": page_size})

    def update_dataset(self, dataset: str, **changes: Any) -> dict[str, Any]:
        """``name=``, ``description=``, ``inputs_schema=``, ``outputs_schema=`` (None removes)."""
        return self._obj("PATCH", f"/datasets/{_p(dataset)}", json=changes)

    def delete_dataset(self, dataset: str) -> None:
        self._request("DELETE", f"/datasets/{_p(dataset)}")

    # --- examples ------------------------------------------------------------------------

    def create_example(
        self,
        dataset: str,
        inputs: Any,
        outputs: Any = None,
        *,
        metadata: dict[str, Any] | None = None,
        splits: list[str] | None = None,
        example_id: str | None = None,
    ) -> dict[str, Any]:
        """Add one example (one new version); returns the example as stored."""
        item = {
            "inputs": inputs,
            "outputs": outputs,
            "metadata": metadata,
            "splits": splits,
            "id": example_id,
        }
        written = self.create_examples(dataset, [item])
        return self.get_example(dataset, written["added"][0])

    def create_examples(
        self,
        dataset: str,
        examples: list[dict[str, Any]],
        *,
        message: str | None = None,
        upsert: bool = False,
    ) -> dict[str, Any]:
        """Add many examples as one new version; returns the ids added/updated/unchanged."""
        if self.redactor is not None:
            examples = [self.redactor.fields(e, EXAMPLE_FIELDS) for e in examples]
        body = {"examples": examples, "message": message, "upsert": upsert}
        return self._obj("POST", f"/datasets/{_p(dataset)}/examples", json=body)

    def get_example(
        self, dataset: str, example_id: str, *, as_of: str | int | None = None
    ) -> dict[str, Any]:
        path = f"/datasets/{_p(dataset)}/examples/{_p(example_id)}"
        return self._obj("GET", path, params={"as_of": as_of})

    def list_examples(
        self,
        dataset: str,
        *,
        as_of: str | int | None = None,
        split: str | None = None,
        metadata: dict[str, Any] | None = None,
        page_size: int = 100,
    ) -> Iterator[dict[str, Any]]:
        """Examples at a version, tag or time (default: the newest), in the order added."""
        params = {
            "as_of": as_of,
            "split": split,
            "metadata": orjson.dumps(metadata).decode() if metadata else None,
            "limit": page_size,
        }
        return self._pages(f"/datasets/{_p(dataset)}/examples", params)

    def update_example(self, dataset: str, example_id: str, **changes: Any) -> dict[str, Any]:
        """``inputs=``, ``outputs=``, ``metadata=``, ``splits=``; one new version."""
        if self.redactor is not None:
            changes = self.redactor.fields(changes, EXAMPLE_FIELDS)
        path = f"/datasets/{_p(dataset)}/examples/{_p(example_id)}"
        return self._obj("PATCH", path, json=changes)

    def delete_example(self, dataset: str, example_id: str) -> dict[str, Any]:
        path = f"/datasets/{_p(dataset)}/examples/{_p(example_id)}"
        return self._obj("DELETE", path)

    def delete_examples(
        self, dataset: str, example_ids: list[str], *, message: str | None = None
    ) -> dict[str, Any]:
        body = {"ids": example_ids, "message": message}
        return self._obj("POST", f"/datasets/{_p(dataset)}/examples/delete", json=body)

    def add_runs_to_dataset(
        self,
        dataset: str,
        run_ids: list[str],
        *,
        prefer_correction: bool = False,
        allow_duplicates: bool = False,
        splits: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Turn runs into examples; with ``prefer_correction`` the reference outputs are the
        latest feedback correction, and a run already in the dataset takes a correction its
        example has not taken yet. Returns what was added, updated and skipped (and why)."""
        body = {
            "run_ids": run_ids,
            "prefer_correction": prefer_correction,
            "allow_duplicates": allow_duplicates,
            "splits": splits,
            "metadata": metadata,
            "message": message,
        }
        return self._obj("POST", f"/datasets/{_p(dataset)}/runs", json=body)

    # --- versions, tags, diff ------------------------------------------------------------

    def list_versions(self, dataset: str, *, page_size: int = 100) -> Iterator[dict[str, Any]]:
        return self._pages(f"/datasets/{_p(dataset)}/versions", {"limit": page_size})

    def tag_version(
        self, dataset: str, tag: str, *, as_of: str | int | None = None
    ) -> dict[str, Any]:
        """Point ``tag`` (e.g. ``prod``) at a version (default: the newest); moves it if set."""
        path = f"/datasets/{_p(dataset)}/tags/{_p(tag)}"
        return self._obj("PUT", path, json={"as_of": as_of})

    def delete_tag(self, dataset: str, tag: str) -> None:
        self._request("DELETE", f"/datasets/{_p(dataset)}/tags/{_p(tag)}")

    def list_tags(self, dataset: str) -> dict[str, int]:
        return cast(dict[str, int], self._obj("GET", f"/datasets/{_p(dataset)}/tags")["tags"])

    def diff_versions(
        self, dataset: str, from_version: str | int, to_version: str | int | None = None
    ) -> dict[str, Any]:
        params = {"from": from_version, "to": to_version}
        return self._obj("GET", f"/datasets/{_p(dataset)}/diff", params=params)

    # --- files ---------------------------------------------------------------------------

    def export_dataset(
        self, dataset: str, *, format: str = "jsonl", as_of: str | int | None = None
    ) -> bytes:
        """The examples of a version as JSONL, CSV or Parquet bytes."""
        params = {"format": format, "as_of": as_of}
        return self._request("GET", f"/datasets/{_p(dataset)}/export", params=params).content

    def import_dataset(
        self,
        dataset: str,
        data: bytes,
        *,
        format: str,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Add a JSONL, CSV or Parquet file's examples as one version (upsert by id)."""
        params = {"format": format, "message": message}
        headers = {"content-type": "application/octet-stream"}
        path = f"/datasets/{_p(dataset)}/import"
        response = self._request("POST", path, params=params, content=data, headers=headers)
        return cast(dict[str, Any], orjson.loads(response.content))
