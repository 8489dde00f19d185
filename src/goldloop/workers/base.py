"""The one contract for background work: ``start()``, ``stop(timeout)``, ``flush()``.

A ``LoopWorker`` calls its ``tick`` function repeatedly on its own thread. A tick returns how
much it did; when it did nothing the loop waits ``poll_s`` (or until ``wake()``), otherwise it
goes again at once, so a backlog drains at full speed and an idle worker costs nothing. Errors
in a tick are logged and counted, never raised: the loop keeps going.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("goldloop.workers")


class LoopWorker:
    def __init__(self, name: str, tick: Callable[[], int], poll_s: float) -> None:
        self.name = name
        self._tick = tick
        self._poll_s = poll_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # one tick at a time: the loop's or a flush()'s
        self._thread: threading.Thread | None = None
        self.ticks = 0
        self.errors = 0
        self.last_error: str | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"goldloop-{self.name}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def flush(self) -> int:
        """Run ticks on the caller's thread until one finds nothing to do; returns work done."""
        total = 0
        while True:
            done = self._one()
            total += done
            if done == 0:
                return total

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("worker %s did not stop within %.1fs", self.name, timeout)
            self._thread = None

    def _one(self) -> int:
        with self._lock:
            try:
                done = self._tick()
            except Exception as exc:  # a tick must never kill the loop
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("worker %s: tick failed", self.name)
                return 0
            self.ticks += 1
            return done

    def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            if self._one() == 0:
                self._wake.wait(max(0.0, self._poll_s - (time.monotonic() - started)))
                self._wake.clear()
