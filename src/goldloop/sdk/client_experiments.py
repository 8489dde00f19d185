"""Client methods for experiments: list, read, results, compare, tag.

Mixed into ``goldloop.client.Client``; see docs/experiments.md. ``experiment_results`` returns
an ``ExperimentResults`` (the object ``goldloop.evaluate`` returns), so ``.compare()``,
``.summary()`` and ``.to_pandas()`` work on an experiment read back from the server.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from goldloop.sdk.client_base import ClientPlumbing, Doc
from goldloop.sdk.client_base import segment as _p

if TYPE_CHECKING:
    from goldloop.evaluation import ExperimentResults


class ExperimentsMixin(ClientPlumbing):
    """``/experiments``: experiments with aggregate scores, results, comparisons and tags."""

    def list_experiments(
        self, *, dataset: str | None = None, tag: str | None = None, page_size: int = 100
    ) -> Iterator[Doc]:
        """Newest first, each with ``run_count``, ``error_count`` and ``scores`` per key
        (``n``, ``mean``, ``binary``); only those on ``dataset`` / carrying ``tag`` if given."""
        return self._pages("/experiments", {"dataset": dataset, "tag": tag, "limit": page_size})

    def get_experiment(self, experiment: str) -> Doc:
        """By id or by name."""
        return self._obj("GET", f"/experiments/{_p(experiment)}")

    def tagged_experiment(self, dataset: str, tag: str) -> Doc | None:
        """The experiment of ``dataset`` carrying ``tag`` (e.g. ``main``), or None."""
        page = self._obj("GET", "/experiments", params={"dataset": dataset, "tag": tag})
        items = page["items"]
        return dict(items[0]) if items else None

    def experiment_rows(self, experiment: str, *, page_size: int = 1000) -> Iterator[Doc]:
        """Every (example, repetition) row: run, inputs, outputs, error, latency, scores."""
        return self._pages(f"/experiments/{_p(experiment)}/results", {"limit": page_size})

    def experiment_results(self, experiment: str) -> ExperimentResults:
        """The experiment read back as ``ExperimentResults`` (rows ordered by example and
        repetition), e.g. ``client.experiment_results("agent-v2-1a2b").compare(baseline)``."""
        from goldloop.evaluation import ExperimentResults

        info = self.get_experiment(experiment)
        rows = list(self.experiment_rows(info["id"]))
        rows.sort(key=lambda r: (r["example_id"], r["repetition"]))
        return ExperimentResults.from_dict(
            {
                "experiment": info["name"],
                "dataset": info["dataset"],
                "dataset_version": info["dataset_version"],
                "repetitions": info["repetitions"] or 1,
                "metadata": info["metadata"],
                "rows": rows,
            }
        )

    def compare_experiments(
        self,
        baseline: str,
        candidate: str,
        *,
        alpha: float = 0.05,
        min_effect: float = 0.0,
        lower_is_better: Sequence[str] = (),
        examples: bool = False,
        exclude_errors: bool = False,
        only_unchanged: bool = False,
        allow_judge_change: bool = False,
    ) -> Doc:
        """Paired comparison on the server: ``{"baseline", "candidate", "alpha", "comparisons":
        [KeyComparison.to_dict() + "verdict", ...]}`` (see docs/statistics.md). Failed
        candidate attempts count as the key's worst score unless ``exclude_errors``; keys whose
        references or judge changed come back ``comparable: false`` unless ``only_unchanged`` /
        ``allow_judge_change``."""
        params = {
            "baseline": baseline,
            "candidate": candidate,
            "alpha": alpha,
            "min_effect": min_effect,
            "lower_is_better": list(lower_is_better),
            "examples": examples,
            "exclude_errors": exclude_errors,
            "only_unchanged": only_unchanged,
            "allow_judge_change": allow_judge_change,
        }
        return self._obj("GET", "/experiments/compare", params=params)

    def tag_experiment(self, experiment: str, tag: str) -> Doc:
        """Tag the experiment; a tag is unique per dataset, so it leaves the experiment that had
        it. Returns ``{"experiment": ..., "previous": id or None}``."""
        return self._obj("PUT", f"/experiments/{_p(experiment)}/tags/{_p(tag)}")

    def untag_experiment(self, experiment: str, tag: str) -> Doc:
        return self._obj("DELETE", f"/experiments/{_p(experiment)}/tags/{_p(tag)}")
