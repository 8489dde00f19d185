"""The attachment blob store: files on disk, named by the SHA-256 of their bytes.

A blob lives at ``ROOT/ab/cd/abcd...`` (the first two pairs of hex digits fan the files out over
directories). Writing is create-a-temporary-file, fsync, rename: a reader never sees a partial
blob, and two processes writing the same bytes at once both succeed with the same file. Blobs are
immutable; which workspace may read one is the database's business (``store.attachments``), never
the path's. The store also keeps the key that signs attachment URLs (``signing_key``), so every
process that shares the directory signs and checks the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_SHA256 = re.compile(r"[0-9a-f]{64}")
KEY_FILE = ".url-signing-key"


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def is_digest(text: str) -> bool:
        return _SHA256.fullmatch(text) is not None

    def path_of(self, digest: str) -> Path:
        """The file of a blob; ``digest`` is checked, so no caller text reaches the path."""
        if not self.is_digest(digest):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        """Store ``data`` (if not already there) and return its SHA-256 hex digest."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_of(digest)
        if path.is_file() and path.stat().st_size == len(data):
            os.utime(path)  # fresh again: a sweep leaves recently used blobs alone
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def read(self, digest: str) -> bytes:
        """The bytes of a blob; ``FileNotFoundError`` when it is not on disk."""
        return self.path_of(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path_of(digest).is_file()

    def stored(self) -> Iterator[str]:
        """The digest of every blob on disk."""
        if not self.root.is_dir():
            return
        for path in self.root.glob("??/??/*"):
            if self.is_digest(path.name):
                yield path.name

    def remove_if_idle(self, digest: str, idle_s: float) -> bool:
        """Delete a blob not written or reused for ``idle_s`` seconds; True if it was."""
        path = self.path_of(digest)
        try:
            if time.time() - path.stat().st_mtime < idle_s:
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def signing_key(self) -> bytes:
        """The secret that signs attachment URLs, created (once, race-free) on first use."""
        path = self.root / KEY_FILE
        try:
            return bytes.fromhex(path.read_text().strip())
        except FileNotFoundError:
            pass
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-key-", dir=self.root)  # mode 0600
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return bytes.fromhex(path.read_text().strip())
