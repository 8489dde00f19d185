# The C extension src/goldloop/_otlp_wire.c (built at install when a C compiler is there).
from collections.abc import Callable
from typing import TypeVar

_Span = TypeVar("_Span")

MAX_DEPTH: int

def decode_trace_request(
    body: bytes | bytearray | memoryview, span_type: Callable[..., _Span], /
) -> tuple[list[_Span], list[str]]: ...
def json_spaced(compact: str, /) -> str: ...
