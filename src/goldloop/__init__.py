"""Goldloop SDK: ``import goldloop``.

Tracing that never hurts the application: ``@goldloop.traced``, ``goldloop.trace(...)`` blocks,
a background batching exporter, the OpenAI wrapper and W3C trace propagation. Only httpx and
orjson are needed; server code is never imported from here. See docs/sdk.md.
"""

from goldloop._version import __version__
from goldloop.sdk.config import ConfigError, SDKConfig
from goldloop.sdk.openai_wrapper import wrap_openai
from goldloop.sdk.propagation import continue_trace, inject_headers
from goldloop.sdk.run import Run
from goldloop.sdk.setup import configure, exporter_stats, flush, shutdown
from goldloop.sdk.threads import ContextThreadPoolExecutor, copy_context_wrapper
from goldloop.sdk.tracing import context, get_current_run, trace, traced

if False:  # for type checkers only (typing.TYPE_CHECKING without importing typing)
    from goldloop.client import ApiError, Client
    from goldloop.evaluation._runner import aevaluate, evaluate

__all__ = [
    "ApiError",
    "Client",
    "ConfigError",
    "ContextThreadPoolExecutor",
    "Run",
    "SDKConfig",
    "__version__",
    "aevaluate",
    "configure",
    "context",
    "continue_trace",
    "copy_context_wrapper",
    "evaluate",
    "exporter_stats",
    "flush",
    "get_current_run",
    "inject_headers",
    "shutdown",
    "trace",
    "traced",
    "wrap_openai",
]


def __getattr__(name: str) -> object:
    # The API client needs httpx, so it is imported on first use: `import goldloop` stays light.
    if name in ("Client", "ApiError"):
        from goldloop import client

        return getattr(client, name)
    # the experiment runner (and the evaluators it brings) loads on first use too
    if name in ("evaluate", "aevaluate"):
        from goldloop.evaluation import _runner

        return getattr(_runner, name)
    raise AttributeError(f"module 'goldloop' has no attribute {name!r}")
