"""Binding a TCP port, and saying who holds one that is taken.

``goldloop demo`` binds its listening socket here before it starts the embedded server, so a
taken port is found before anything is created, and the message names the process that holds
it (on Linux, from ``/proc``; elsewhere, or for another user's process, it says so).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from pathlib import Path

_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


class PortInUse(OSError):
    """The port is taken; ``holder`` describes the process holding it, when it can be found."""

    def __init__(self, host: str, port: int, holder: str | None) -> None:
        self.host, self.port, self.holder = host, port, holder
        by = f"by {holder}" if holder else "by another program"
        super().__init__(errno.EADDRINUSE, f"port {port} on {host} is in use {by}")


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (0: any free port), ready to hand to uvicorn."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: no TIME_WAIT
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port, port_holder(port)) from None
        raise
    sock.set_inheritable(True)
    return sock


def port_holder(port: int, proc: Path = Path("/proc")) -> str | None:
    """``'goldloop serve' (pid 123)`` for the process listening on ``port``, or None."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (pid_dir / "fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        return f"{_command(pid_dir)!r} (pid {pid_dir.name})"
    return "a process of another user"


def _listening_inodes(port: int, proc: Path) -> set[str]:
    found: set[str] = set()
    for table in ("net/tcp", "net/tcp6"):
        with contextlib.suppress(OSError):
            for line in (proc / table).read_text().splitlines()[1:]:
                fields = line.split()
                listening = len(fields) > 9 and fields[3] == _LISTEN
                if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    found.add(fields[9])
    return found


def _command(pid_dir: Path) -> str:
    """The command line, with a Python interpreter's ``-m goldloop`` shown as ``goldloop``."""
    args = (pid_dir / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    words = [a.decode(errors="replace") for a in args]
    if len(words) >= 3 and words[1] == "-m":
        words = words[2:]
    elif len(words) >= 2 and "python" in os.path.basename(words[0]):
        words = words[1:]
    if words:
        words[0] = os.path.basename(words[0])
    return " ".join(words[:4])
