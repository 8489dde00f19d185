"""A clock a test moves by hand: pass it to ``create_app`` by overriding the ``clock`` fixture."""

from __future__ import annotations


class FakeClock:
    """Microseconds since the epoch, moved by assigning ``now``."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now
