"""Which dataset holds an example: the LangSmith API addresses examples by id alone."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from goldloop.store.schema import dataset_examples, datasets


def datasets_of(conn: Connection, workspace_id: str, example_ids: Sequence[str]) -> dict[str, str]:
    """example id -> dataset id, within the workspace; a current example wins over one that
    only exists in older versions."""
    found: dict[str, str] = {}
    ids = list(dict.fromkeys(example_ids))
    for i in range(0, len(ids), 500):
        query = (
            sa.select(
                dataset_examples.c.example_id,
                dataset_examples.c.dataset_id,
                dataset_examples.c.version_to,
            )
            .join(datasets, datasets.c.id == dataset_examples.c.dataset_id)
            .where(
                datasets.c.workspace_id == workspace_id,
                dataset_examples.c.example_id.in_(ids[i : i + 500]),
            )
            .order_by(dataset_examples.c.version_from)
        )
        current: set[str] = set()
        for example_id, dataset_id, version_to in conn.execute(query):
            if example_id in current:
                continue
            found[example_id] = dataset_id
            if version_to is None:
                current.add(example_id)
    return found
