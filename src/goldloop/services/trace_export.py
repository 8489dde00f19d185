"""Export a project's runs as OTLP/JSON Lines (see ``domain.otel_export``).

Import needs no service of its own: every exported line is an OTLP/JSON request, posted to
``/v1/traces`` (with the target project in ``x-goldloop-project``) like any exporter's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from goldloop.domain.otel_export import export_lines
from goldloop.services import projects
from goldloop.services.context import Principal, ServiceContext
from goldloop.store import run_rows

EXPORT_PAGE = 500


def export_project(
    ctx: ServiceContext, who: Principal, project_id: str, *, page: int = EXPORT_PAGE
) -> Iterator[bytes]:
    """Check the project exists (``NotFound`` otherwise), then yield one line per page of runs."""
    project = projects.get(ctx, who, project_id)

    def read_page(after: int) -> list[dict[str, Any]]:
        return ctx.db.read(
            lambda c: run_rows.page_project_rows(
                c, who.workspace_id, project.id, after_pk=after, limit=page
            )
        )

    def lines() -> Iterator[bytes]:
        after = 0
        while True:
            rows = read_page(after)
            if not rows:
                return
            yield export_lines(rows, project.name)
            after = rows[-1]["pk"]

    return lines()
