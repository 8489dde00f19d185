"""The HTTP server class of the tests' helper servers (fake LLMs, webhook receivers, the SDK's
recording server): a ``ThreadingHTTPServer`` that does not print a client's hang-up.

A client that gives up (an SDK flush with a deadline, a timeout under test) closes its socket;
the handler's reply then fails with ``BrokenPipeError`` or ``ConnectionResetError``, which the
standard server prints as a traceback on stderr that looks like a failure in the test output.
Those are expected and dropped; any other error in a handler is printed as before.
"""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any

HANG_UPS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class QuietHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], HANG_UPS):
            return
        super().handle_error(request, client_address)
