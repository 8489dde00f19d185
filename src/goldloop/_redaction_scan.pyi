# The C extension src/goldloop/_redaction_scan.c (built at install when a C compiler is there).

SECRET: int
EMAIL: int
IP6: int
NUMERIC: int

def screen(
    text: str, want: int, /
) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]: ...
