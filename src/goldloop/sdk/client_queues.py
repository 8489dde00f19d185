"""Client methods for review queues (annotation queues, docs/annotation-queues.md).

Mixed into ``goldloop.client.Client``; each method is one HTTP call to
``/api/v1/annotation-queues``. Creating, changing and deleting a queue need an admin key;
adding runs, taking the next item, reviewing and skipping need any key (the key is the
reviewer).

    from goldloop.client import Client

    with Client() as gl:
        queue = gl.create_queue("triage", keys=["correct"], dataset="support-golden")
        gl.add_runs_to_queue(queue["id"], failing_run_ids)
        nxt = gl.next_queue_item(queue["id"])
        if nxt["item"] is not None:
            gl.review_queue_item(queue["id"], nxt["item"]["id"], scores={"correct": False},
                                 correction={"answer": "Yes, within 30 days."})
        print(gl.queue_agreement(queue["id"])["keys"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from goldloop.sdk.client_base import ClientPlumbing, Doc
from goldloop.sdk.client_base import segment as _p

_Q = "/annotation-queues"


class QueuesMixin(ClientPlumbing):
    """``/annotation-queues``: queues, their items, reviews and agreement."""

    def create_queue(
        self,
        name: str,
        *,
        keys: Sequence[str] = (),
        instructions: str | None = None,
        reviewers_needed: int = 1,
        dataset: str | None = None,
        description: str | None = None,
        lease_seconds: int | None = None,
    ) -> Doc:
        """A queue whose reviews fill the declared feedback ``keys``; completed items become
        examples of ``dataset`` (a name or id) when given."""
        body: dict[str, Any] = {
            "name": name,
            "keys": list(keys),
            "instructions": instructions,
            "reviewers_needed": reviewers_needed,
            "dataset": dataset,
            "description": description,
        }
        if lease_seconds is not None:
            body["lease_seconds"] = lease_seconds
        return self._obj("POST", _Q, json=body)

    def get_queue(self, queue_id: str) -> Doc:
        return self._obj("GET", f"{_Q}/{_p(queue_id)}")

    def list_queues(self, *, name_contains: str | None = None) -> list[Doc]:
        params = {"name_contains": name_contains} if name_contains else {}
        return cast(list[Doc], self._obj("GET", _Q, params=params)["items"])

    def update_queue(self, queue_id: str, **changes: Any) -> Doc:
        """Change fields (``dataset=None`` detaches the dataset)."""
        return self._obj("PATCH", f"{_Q}/{_p(queue_id)}", json=changes)

    def delete_queue(self, queue_id: str) -> None:
        self._request("DELETE", f"{_Q}/{_p(queue_id)}")

    def add_runs_to_queue(self, queue_id: str, run_ids: Sequence[str]) -> Doc:
        """``{"added": [items], "already_queued": [run ids]}``."""
        return self._obj("POST", f"{_Q}/{_p(queue_id)}/items", json={"run_ids": list(run_ids)})

    def list_queue_items(
        self, queue_id: str, *, status: str | None = None, mine: bool = False
    ) -> list[Doc]:
        params: dict[str, Any] = {"mine": "true"} if mine else {}
        if status is not None:
            params["status"] = status
        return cast(
            list[Doc], self._obj("GET", f"{_Q}/{_p(queue_id)}/items", params=params)["items"]
        )

    def next_queue_item(self, queue_id: str) -> Doc:
        """Reserve the caller's next item: ``{"item", "run", "reference", "lease_expires_at"}``
        (``item`` None when nothing is left for the caller)."""
        return self._obj("POST", f"{_Q}/{_p(queue_id)}/next")

    def review_queue_item(
        self,
        queue_id: str,
        item_id: str,
        *,
        scores: dict[str, Any],
        correction: Any = None,
        comment: str | None = None,
    ) -> Doc:
        body = {"scores": scores, "correction": correction, "comment": comment}
        return self._obj("POST", f"{_Q}/{_p(queue_id)}/items/{_p(item_id)}/reviews", json=body)

    def skip_queue_item(self, queue_id: str, item_id: str) -> Doc:
        return self._obj("POST", f"{_Q}/{_p(queue_id)}/items/{_p(item_id)}/skip")

    def queue_agreement(self, queue_id: str) -> Doc:
        """Per key: Cohen's kappa (two reviewers) and Krippendorff's alpha, with intervals."""
        return self._obj("GET", f"{_Q}/{_p(queue_id)}/agreement")

    # --- pairwise review (docs/annotation-queues.md, "Pairwise review") ---

    def create_pairwise_queue(
        self,
        name: str,
        *,
        experiments: Sequence[str] | None = None,
        pairs: Sequence[tuple[str, str]] | None = None,
        instructions: str | None = None,
        reviewers_needed: int = 1,
    ) -> Doc:
        """A queue of pairs from two experiments ``(A, B)`` or from ``(run A, run B)`` pairs:
        ``{"queue", "experiment_a", "experiment_b", "added", "already_queued"}``."""
        body: dict[str, Any] = {
            "name": name,
            "instructions": instructions,
            "reviewers_needed": reviewers_needed,
        }
        if experiments is not None:
            body["experiments"] = list(experiments)
        if pairs is not None:
            body["pairs"] = [{"run_a": a, "run_b": b} for a, b in pairs]
        return self._obj("POST", f"{_Q}/pairwise", json=body)

    def add_pairs_to_queue(self, queue_id: str, pairs: Sequence[tuple[str, str]]) -> Doc:
        """``{"added": n, "already_queued": [run A ids]}``."""
        body = {"pairs": [{"run_a": a, "run_b": b} for a, b in pairs]}
        return self._obj("POST", f"{_Q}/{_p(queue_id)}/pairs", json=body)

    def get_queue_pair(self, queue_id: str, item_id: str) -> Doc:
        """``{"pair", "a", "b"}``: the pair (run ids, ``left``) and both runs."""
        return self._obj("GET", f"{_Q}/{_p(queue_id)}/pairs/{_p(item_id)}")

    def prefer(
        self, queue_id: str, item_id: str, preference: str, *, comment: str | None = None
    ) -> Doc:
        """Say which run of the pair is better: ``"A"``, ``"B"`` or ``"tie"``."""
        body = {"preference": preference, "comment": comment}
        return self._obj("POST", f"{_Q}/{_p(queue_id)}/pairs/{_p(item_id)}/preference", json=body)

    def pairwise_results(self, queue_id: str) -> Doc:
        """B's win rate (ties as half) with its interval, ties, sign test, n and agreement."""
        return self._obj("GET", f"{_Q}/{_p(queue_id)}/results")
