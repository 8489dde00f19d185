"""Where a gate's baseline comes from, for the CLI (`goldloop gate --baseline`, `goldloop
compare`) and the pytest plugin alike: a saved results file, an experiment id or name on the
server, or ``tag:NAME`` (the experiment of the gate's dataset that carries tag NAME)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from goldloop.client import ApiError, Client

if TYPE_CHECKING:
    from goldloop.evaluation._results import ExperimentResults

__all__ = ["BaselineError", "is_results_file", "load_experiment", "tag_experiment"]


class BaselineError(Exception):
    """The experiment cannot be found or read; the message says which and why."""


def is_results_file(spec: str) -> bool:
    """Any existing file, or a name ending in ``.json`` (a missing one is a missing file, not an
    experiment name); ``tag:...`` never is."""
    return not spec.startswith("tag:") and (Path(spec).is_file() or spec.endswith(".json"))


def _load_file(path: str) -> ExperimentResults:
    from goldloop.evaluation._results import ExperimentResults

    try:
        return ExperimentResults.load(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BaselineError(f"cannot read experiment results {path}: {exc}") from None


def load_experiment(
    spec: str,
    *,
    endpoint: str | None = None,
    api_key: str | None = None,
    dataset: str | None = None,
) -> ExperimentResults:
    """The experiment ``spec`` names. ``tag:NAME`` needs ``dataset`` (a dataset on the
    server). The server is ``endpoint``/``api_key``, else ``GOLDLOOP_ENDPOINT``/``_API_KEY``."""
    if is_results_file(spec):
        return _load_file(spec)
    with Client(endpoint, api_key) as client:
        try:
            if spec.startswith("tag:"):
                tag = spec[4:]
                if not dataset:
                    raise BaselineError(
                        f"{spec}: a tagged baseline needs the dataset on the server"
                    )
                found = client.tagged_experiment(dataset, tag)
                if found is None:
                    raise BaselineError(f"no experiment of dataset {dataset!r} is tagged {tag!r}")
                return client.experiment_results(found["id"])
            return client.experiment_results(spec)
        except ApiError as exc:
            if exc.status == 404 and not spec.startswith("tag:"):
                raise BaselineError(
                    f"{spec!r} is neither a results file nor an experiment on {client.endpoint}"
                ) from None
            raise BaselineError(
                f"cannot read experiment {spec!r}: {exc.message} ({exc.status})"
            ) from None
        except httpx.TransportError as exc:
            raise BaselineError(
                f"{spec!r} is not a results file, and {client.endpoint} is out of reach: {exc}"
            ) from None


def tag_experiment(
    experiment: str, tag: str, *, endpoint: str | None = None, api_key: str | None = None
) -> str:
    """Tag an experiment on the server (e.g. the one a gate just passed); returns a line saying
    what moved. The server is ``endpoint``/``api_key``, else ``GOLDLOOP_ENDPOINT``/``_API_KEY``."""
    with Client(endpoint, api_key) as client:
        try:
            moved = client.tag_experiment(experiment, tag)
        except ApiError as exc:
            raise BaselineError(
                f"cannot tag experiment {experiment!r} as {tag!r}: {exc.message}"
            ) from None
        except httpx.TransportError as exc:
            raise BaselineError(
                f"cannot tag experiment {experiment!r}: {client.endpoint}: {exc}"
            ) from None
    previous = moved.get("previous")
    return f"tagged experiment {experiment} as {tag!r}" + (
        f" (moved from {previous})" if previous else ""
    )
