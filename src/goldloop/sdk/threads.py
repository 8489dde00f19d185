"""Carrying the current run into threads.

``contextvars`` follow ``await`` and asyncio tasks (and ``asyncio.to_thread``) by themselves, but
a plain thread pool runs work in its own threads' contexts, where no run is current. Submit work
through ``ContextThreadPoolExecutor`` or wrap the callable with ``copy_context_wrapper`` and runs
started inside become children of the run that was current when the work was submitted.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def copy_context_wrapper(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` bound to a copy of the caller's context (current run, ``goldloop.context``).

    Each call runs in its own copy, so the wrapper may be called from many threads at once:
    ``pool.map(goldloop.copy_context_wrapper(work), items)``.
    """
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.copy().run(fn, *args, **kwargs)

    return wrapper


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose ``submit``/``map`` run work in the submitter's context."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        ctx = contextvars.copy_context()
        return super().submit(ctx.run, fn, *args, **kwargs)
