"""Where a benchmark leaves its figures: ``bench/results/<name>-<time>.json`` (git-ignored)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` with the load average at the end of the run; returns the file."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    path.write_text(json.dumps({**payload, "loadavg": load}, indent=1))
    print(f"written to {path}")
    return path
