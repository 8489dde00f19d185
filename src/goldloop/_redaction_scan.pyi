# The C extension src/goldloop/_redaction_scan.c (built at install when a C compiler is there).

from collections.abc import Callable
from typing import Any

SECRET: int
EMAIL: int
IP6: int
NUMERIC: int

_Windows = list[tuple[int, int]]

def screen(text: str, want: int, /) -> tuple[int, _Windows, _Windows, _Windows]: ...
def walk(
    value: Any,
    want: int,
    shortest: int,
    fn: Callable[[str, int, _Windows, _Windows, _Windows], str],
    /,
) -> Any: ...
