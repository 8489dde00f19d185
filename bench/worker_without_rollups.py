"""Run ``python -m goldloop worker ...`` with its hourly rollup loop idle: a bench-only way to
tell how much of a rule worker's wall time, and of PostgreSQL's CPU, the rollup loop (which
recomputes every hour the new scores mark) takes beside the rule actions.

    python bench/worker_without_rollups.py worker --database-url ...

``bench/rule_workers.py --no-rollups`` starts its workers this way.
"""

from __future__ import annotations

import runpy
import sys

from goldloop.services import rollups


def _idle(self: rollups.RollupWorker) -> int:
    return 0


def main() -> None:
    rollups.RollupWorker.tick = _idle  # type: ignore[method-assign]
    sys.argv = ["goldloop", *sys.argv[1:]]
    runpy.run_module("goldloop", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
