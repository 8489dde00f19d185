"""Run ``python -m goldloop ...`` under cProfile (CPU time) in every thread (the action runner's
pool threads too), and write the merged stats to a file when the process exits.

    python bench/profile_threads.py /tmp/worker.prof worker --database-url ...
    python -m pstats /tmp/worker.prof   # then: sort cumtime, stats 40
    GOLDLOOP_PROFILE_CLOCK=wall python bench/profile_threads.py ...   # wall time, waits included

``bench/rule_workers.py --profile-dir DIR`` starts its workers this way.
"""

from __future__ import annotations

import atexit
import cProfile
import os
import pstats
import runpy
import sys
import threading
import time
from typing import Any

profiles: list[cProfile.Profile] = []
# CPU time of each thread (the default), or wall time (where a thread waits on the database)
WALL = os.environ.get("GOLDLOOP_PROFILE_CLOCK") == "wall"
CLOCK = time.perf_counter if WALL else time.thread_time
_thread_run = threading.Thread.run


def _profiled_run(self: threading.Thread) -> None:
    prof = cProfile.Profile(CLOCK)
    profiles.append(prof)
    prof.enable()
    try:
        _thread_run(self)
    finally:
        prof.disable()


def _dump(path: str, main: cProfile.Profile) -> None:
    main.disable()
    stats: Any = None
    for prof in [main, *profiles]:
        prof.disable()  # a pool thread still alive at exit
        stats = pstats.Stats(prof) if stats is None else stats.add(prof)
    stats.dump_stats(path)


def main() -> None:
    path = sys.argv[1]
    sys.argv = ["goldloop", *sys.argv[2:]]
    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    prof = cProfile.Profile(CLOCK)
    atexit.register(_dump, path, prof)
    prof.enable()
    runpy.run_module("goldloop", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
