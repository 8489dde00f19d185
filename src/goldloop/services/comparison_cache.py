"""The comparison page's per-experiment reads, kept while nothing they were made from changed.

Comparing two experiments of 3,000 runs reads both sides in full (every root run, every score)
and folds them into the ``Side`` the comparison code takes; paging through the comparison, or
switching its filter, would do it again for each request. An entry is keyed by the experiment
and the *change stamp* of its runs and of the feedback on them (``store.experiments.change_stamp``,
read in the same snapshot as the entry's rows), so a run or a score that arrives, changes or
goes makes the next request read afresh: a hit is always what a fresh read would give."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

MAX_ENTRIES = 16
"""Experiments kept per process (the two to five sides of the comparisons being read)."""


class StampedCache(Generic[T]):
    """At most ``max_entries`` values by key, each valid for one stamp (thread-safe, LRU)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[Any, tuple[Any, T]] = OrderedDict()
        self._max = max_entries
        self.hits = 0
        self.misses = 0

    def get_or_make(self, key: Any, stamp: Any, make: Callable[[], T]) -> T:
        """The value kept for ``key`` if it was made at ``stamp``, else ``make()`` (kept)."""
        with self._lock:
            found = self._items.get(key)
            if found is not None and found[0] == stamp:
                self._items.move_to_end(key)
                self.hits += 1
                return found[1]
            self.misses += 1
        value = make()
        with self._lock:
            self._items[key] = (stamp, value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)
        return value
