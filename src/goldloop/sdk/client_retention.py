"""Client methods for retention policies, deleting traces, erasure and the audit log.

Mixed into ``goldloop.client.Client``; each method is one HTTP call to ``/api/v1`` (see
docs/self-hosting.md, "Retention and erasure"). Deleting and erasing need an admin key; pass
``dry_run=True`` first to see the counts.

    from goldloop.client import Client

    with Client() as gl:
        gl.set_retention("support", keep_days=30, keep_with_feedback=True)
        preview = gl.delete_traces(filter='status = "error"', project="support", dry_run=True)
        gl.erase(user_id="customer-42")                  # runs, feedback, dataset examples
        for entry in gl.audit_log(action="erasure"):
            print(entry["at"], entry["actor"], entry["details"])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

from goldloop.sdk.client_base import ClientPlumbing, Doc
from goldloop.sdk.client_base import segment as _p


class RetentionMixin(ClientPlumbing):
    """``/projects/{project}/retention``, ``/traces/delete``, ``/erasure`` and ``/audit``."""

    def get_retention(self, project: str) -> Doc:
        """The project's retention policy (``ApiError`` 404 when it has none)."""
        return self._obj("GET", f"/projects/{_p(project)}/retention")

    def set_retention(
        self,
        project: str,
        keep_days: int,
        *,
        keep_with_feedback: bool = False,
        keep_in_datasets: bool = False,
    ) -> Doc:
        """Keep the project's runs ``keep_days`` days; optionally keep traces with feedback or
        with a run copied into a dataset. The workers delete the rest in small batches."""
        body = {
            "keep_days": keep_days,
            "keep_with_feedback": keep_with_feedback,
            "keep_in_datasets": keep_in_datasets,
        }
        return self._obj("PUT", f"/projects/{_p(project)}/retention", json=body)

    def delete_retention(self, project: str) -> None:
        """Remove the policy: the project keeps every run again."""
        self._request("DELETE", f"/projects/{_p(project)}/retention")

    def delete_traces(
        self,
        trace_ids: Sequence[str] | None = None,
        *,
        filter: str | None = None,
        project: str | None = None,
        dry_run: bool = False,
    ) -> Doc:
        """Delete traces by id, or every trace with a run matching ``filter`` (in ``project``
        when given), with their runs and feedback. Returns the counts (``dry_run``: what would
        go, nothing deleted)."""
        body = {
            "trace_ids": list(trace_ids) if trace_ids is not None else None,
            "filter": filter,
            "project": project,
            "dry_run": dry_run,
        }
        return self._obj("POST", "/traces/delete", json=body)

    def erase(
        self,
        *,
        user_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        filter: str | None = None,
        dry_run: bool = False,
    ) -> Doc:
        """Erase one person's data: the traces of the runs with this ``user_id`` (or this
        ``metadata`` key and value, or matching ``filter``), the feedback on them, and the
        dataset examples made from them in every version. Recorded (counts only) in the
        audit log."""
        body = {"user_id": user_id, "metadata": metadata, "filter": filter, "dry_run": dry_run}
        return self._obj("POST", "/erasure", json=body)

    def audit_log(self, *, action: str | None = None, page_size: int = 100) -> Iterator[Doc]:
        """The workspace's audit entries, newest first (admin key), fetched page by page."""
        before: int | None = None
        while True:
            params = {"limit": page_size, "before": before, "action": action}
            page = cast(list[Doc], self._json("GET", "/audit", params=params))
            yield from page
            if len(page) < page_size:
                return
            before = int(page[-1]["id"])
