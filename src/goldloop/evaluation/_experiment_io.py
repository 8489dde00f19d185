"""The experiment runner's talk with the server: reading a dataset at a pinned version,
registering the experiment when it starts, and storing evaluator results as feedback on the
experiment's runs."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

from goldloop.evaluation._results import ExperimentResults, ExperimentRow
from goldloop.evaluation._types import EvaluationResult, ExampleData
from goldloop.sdk import setup as _setup
from goldloop.sdk.client_base import error_of

__all__ = ["fetch_dataset", "register_experiment", "upload_enabled", "upload_results"]


def _client() -> httpx.Client:
    config = _setup.current_config()
    if config is None:  # neither configure() nor a traced call yet: the same implicit set-up
        _setup.configure_from_env()
        config = _setup.current_config()
    if config is None or not config.endpoint:
        raise ValueError(
            "reading a dataset by name needs goldloop.configure(endpoint=..., api_key=...)"
        )
    headers = {"x-api-key": config.api_key} if config.api_key else {}
    transport = config.transport if isinstance(config.transport, httpx.BaseTransport) else None
    return httpx.Client(
        base_url=config.endpoint, headers=headers, timeout=config.timeout_s, transport=transport
    )


def _dataset_error(name: str, client: httpx.Client, resp: httpx.Response) -> str:
    """One line saying why the dataset cannot be read (the server's message, not its JSON)."""
    where = str(client.base_url).rstrip("/")
    if resp.status_code == 404:
        return f"no dataset named {name!r} on {where} (a .json/.jsonl path must exist)"
    message = error_of(resp).message
    if resp.status_code in (401, 403):
        return (
            f"could not read dataset {name!r} from {where}: {message} "
            "(set GOLDLOOP_API_KEY, or pass the key to goldloop.configure)"
        )
    return f"could not read dataset {name!r} from {where}: {message} ({resp.status_code})"


def fetch_dataset(name: str, as_of: str | int | None) -> tuple[list[ExampleData], str, int]:
    """Read every example of a dataset at one version (pinned at the first page)."""
    examples: list[ExampleData] = []
    version: int | None = None
    cursor: str | None = None
    with _client() as client:
        while True:
            params: dict[str, Any] = {"limit": 1000}
            pin = version if version is not None else as_of
            if pin is not None:
                params["as_of"] = str(pin)
            if cursor:
                params["cursor"] = cursor
            resp = client.get(f"/api/v1/datasets/{name}/examples", params=params)
            if resp.status_code >= 400:
                raise ValueError(_dataset_error(name, client, resp))
            page = resp.json()
            version = int(page["version"])
            for item in page["items"]:
                splits = item.get("splits") or []
                examples.append(
                    ExampleData(
                        inputs=item.get("inputs") or {},
                        outputs=item.get("outputs"),
                        metadata=item.get("metadata") or {},
                        id=str(item["id"]),
                        split=splits[0] if splits else None,
                        lineage=item.get("lineage"),
                    )
                )
            cursor = page.get("next_cursor")
            if not cursor:
                break
    return examples, name, int(version or 0)


def upload_enabled(upload: bool | None) -> bool:
    """Whether the experiment goes to the server: ``upload=None`` means when the SDK is
    configured to trace. Call after the SDK read its configuration."""
    config = _setup.current_config()
    enabled = config is not None and config.tracing if upload is None else upload
    if enabled and (config is None or not config.tracing):
        raise ValueError("upload needs goldloop.configure(tracing=True, endpoint=..., api_key=...)")
    return bool(enabled)


def register_experiment(
    name: str,
    *,
    dataset: str | None,
    dataset_version: int | None,
    repetitions: int,
    evaluators: list[str],
    metadata: dict[str, Any],
) -> None:
    """Make the experiment's project an experiment on the server before any run arrives (its
    dataset and pinned version, repetitions, evaluators, metadata)."""
    body = {
        "name": name,
        "dataset": dataset,
        "dataset_version": dataset_version,
        "repetitions": repetitions,
        "evaluators": evaluators,
        "metadata": metadata,
    }
    with _client() as client:
        resp = client.post("/api/v1/experiments", content=_json(body), headers=_JSON)
    if resp.status_code >= 400:
        raise ValueError(
            f"could not register experiment {name!r}: {resp.status_code} {resp.text[:200]}"
        )


def upload_results(results: ExperimentResults) -> None:
    """Send the evaluator results as feedback on the experiment's runs (the runs themselves go
    through the SDK's exporter, flushed first)."""
    _setup.flush(timeout=30.0)
    with _client() as client:
        for row in results.rows:
            for res in row.results:
                if res.score is None and res.value is None and res.error is None:
                    continue
                body = _feedback_body(res, row, results)
                resp = client.post("/api/v1/feedback", content=_json(body), headers=_JSON)
                if resp.status_code >= 400:
                    raise ValueError(
                        f"could not store feedback: {resp.status_code} {resp.text[:200]}"
                    )
    results.uploaded = True


_JSON = {"content-type": "application/json"}


def _json(body: Any) -> bytes:
    # default=str: metadata and values may hold anything the caller put there
    return orjson.dumps(body, default=str)


def _feedback_body(
    res: EvaluationResult, row: ExperimentRow, results: ExperimentResults
) -> dict[str, Any]:
    body = res.to_feedback()
    body["run_id"] = row.run.id
    body["trace_id"] = row.run.trace_id
    body["source_info"] = {
        **body["source_info"],
        "experiment": results.experiment,
        "example_id": row.example_key,
        "repetition": row.repetition,
    }
    # idempotent: the same result of the same run is stored once
    body["feedback_id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{row.run.id}/{res.key}"))
    return body
