"""The reference outputs of an experiment's examples: each dataset example's ``outputs`` as of
the dataset version the experiment ran on, so a page can show what the answer should have been
beside what the target said."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.services.context import Principal, ServiceContext
from goldloop.services.experiments import Experiment
from goldloop.store import datasets as dataset_store
from goldloop.store import examples as example_store

__all__ = ["reference_outputs"]


def reference_outputs(
    ctx: ServiceContext, who: Principal, experiment: Experiment, example_ids: Collection[str]
) -> dict[str, Any]:
    """example id -> reference outputs, for the examples found in the experiment's dataset at
    its version (the current one when the version is unknown). Nothing for an experiment whose
    examples were given in code, or whose dataset is gone."""
    dataset_id = experiment.dataset_id
    if dataset_id is None or not example_ids:
        return {}

    def read(conn: Connection) -> dict[str, Any]:
        row = dataset_store.get(conn, who.workspace_id, dataset_id)
        if row is None or row.id != dataset_id:
            return {}
        found = example_store.by_ids(conn, row.id, example_ids, experiment.dataset_version)
        return {ex_id: ex.outputs for ex_id, ex in found.items()}

    return ctx.db.read(read)
