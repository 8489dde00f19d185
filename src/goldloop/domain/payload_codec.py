"""zstd with a trained dictionary for the large JSON documents of runs (SQLite only).

A run's ``inputs``, ``outputs`` and ``extra`` are stored as JSON text, or, once the database has
a dictionary, as a zstd frame compressed with it. The frame names its dictionary: zstd writes the
dictionary id in the frame header, and the id is the dictionary's row in the database's
``payload_dictionaries`` table. Text values keep reading as before, so tables hold old and new
rows side by side and nothing is rewritten on upgrade.

Dictionaries are trained on the database's own payloads (``train``). A frame whose dictionary is
missing, or that does not decode, reads as an ``unreadable`` document saying why (see
``unreadable``) instead of failing the page, the export or the filter that met it.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Sequence

import orjson
import zstandard

# Every zstd frame starts with these bytes; JSON text never does (it starts with {, [, ", a
# digit, t, f, n or whitespace), so a value is compressed exactly when it starts with them.
FRAME_MAGIC = b"\x28\xb5\x2f\xfd"
_DICT_MAGIC = b"\x37\xa4\x30\xec"
# Documents shorter than this stay text: a frame's header and checksum (~10 bytes) would eat
# most of what compressing a short value wins, and short values are the ones filters read most.
MIN_BYTES = 200
LEVEL = 3
DICTIONARY_BYTES = 64 * 1024
# zstd reserves dictionary ids below 32768 for a registry that does not exist; stay above.
FIRST_ID = 32768
UNREADABLE_KEY = "goldloop_unreadable"


def is_frame(value: bytes) -> bool:
    return value[:4] == FRAME_MAGIC


def frame_dictionary(frame: bytes) -> int:
    """The dictionary id written in a frame's header (0: none)."""
    return int(zstandard.get_frame_parameters(frame).dict_id)


def train(samples: Sequence[bytes], dict_id: int, size: int = DICTIONARY_BYTES) -> bytes:
    """A dictionary of at most ``size`` bytes trained on ``samples`` (JSON documents), with id
    ``dict_id``. Raises ``zstandard.ZstdError`` when the samples are too few or too alike."""
    made = zstandard.train_dictionary(size, list(samples), dict_id=dict_id, level=LEVEL)
    return bytes(made.as_bytes())


def with_id(dictionary: bytes, dict_id: int) -> bytes:
    """The dictionary with its id set to ``dict_id`` (bytes 4-8 of the dictionary format)."""
    if dictionary[:4] != _DICT_MAGIC:
        raise ValueError("not a zstd dictionary")
    return dictionary[:4] + struct.pack("<I", dict_id) + dictionary[8:]


def unreadable(reason: str) -> bytes:
    """The JSON document a value reads as when it cannot be decompressed."""
    return orjson.dumps({UNREADABLE_KEY: reason})


class PayloadCodec:
    """One database's dictionaries: compresses with the newest this process knows of and
    decompresses with whichever a frame names, fetching an unknown one with ``load`` (id ->
    dictionary bytes or None). Thread-safe: the writer compresses while readers decompress."""

    def __init__(self, load: Callable[[int], bytes | None]) -> None:
        self._load = load
        self._lock = threading.Lock()
        # zstd (de)compressor objects must not be used by two threads at once: each thread
        # makes its own (``_local``) from the shared, read-only dictionaries.
        self._dicts: dict[int, zstandard.ZstdCompressionDict | None] = {0: None}
        self._local = threading.local()
        self._missing: dict[int, str] = {}  # dictionary id -> why it cannot be used
        self.current: int | None = None
        self.current_data = b""  # the current dictionary, for ingest worker processes
        self.enabled = True
        # when the service may look for a first dictionary again (clock µs), and the runs
        # written since it last looked (services.payload_compression)
        self.next_check = 0
        self.written_since = 0

    def use(self, dict_id: int, dictionary: bytes, *, current: bool = True) -> None:
        """Know dictionary ``dict_id``; compress with it from now on when ``current``. Raises
        ``ValueError`` or ``zstandard.ZstdError`` for a damaged dictionary."""
        data = zstandard.ZstdCompressionDict(dictionary)
        if data.dict_id() != dict_id:
            raise ValueError(f"dictionary {dict_id} holds the id {data.dict_id()}")
        with self._lock:
            zstandard.ZstdDecompressor(dict_data=data)  # checks it; prepares it for decoding
            if current and (self.current is None or dict_id > self.current):
                data.precompute_compress(level=LEVEL)
                self.current, self.current_data = dict_id, dictionary
            self._dicts[dict_id] = data
            self._missing.pop(dict_id, None)

    def compress(self, text: str) -> str | bytes:
        """A JSON document as stored: a frame if it is long and there is a dictionary."""
        dict_id = self.current
        if dict_id is None or not self.enabled or len(text) < MIN_BYTES:
            return text
        made: tuple[int, zstandard.ZstdCompressor] | None = getattr(self._local, "cctx", None)
        if made is None or made[0] != dict_id:
            compressor = zstandard.ZstdCompressor(
                level=LEVEL,
                dict_data=self._dicts[dict_id],
                write_checksum=True,
                write_content_size=True,
            )
            made = self._local.cctx = (dict_id, compressor)
        return made[1].compress(text.encode())

    def decompress(self, frame: bytes) -> bytes:
        """A stored frame's JSON document, or ``unreadable(why)`` when it cannot be read."""
        opened = self._open(frame)
        return opened if type(opened) is bytes else unreadable(str(opened))

    def try_decompress(self, frame: bytes) -> bytes | None:
        """A stored frame's JSON document, or None when it cannot be read (a frame that is
        rewritten must not become the ``unreadable`` message)."""
        opened = self._open(frame)
        return opened if type(opened) is bytes else None

    def _open(self, frame: bytes) -> bytes | str:
        """A frame's document (bytes), or why it cannot be read (str)."""
        try:
            dict_id = frame_dictionary(frame)
        except zstandard.ZstdError as exc:
            return f"the stored value is not a valid zstd frame: {exc}"
        mine: dict[int, zstandard.ZstdDecompressor] | None = getattr(self._local, "dctx", None)
        if mine is None:
            mine = self._local.dctx = {}
        decompressor = mine.get(dict_id)
        if decompressor is None:
            if dict_id not in self._dicts and not self._fetch(dict_id):
                return self._missing[dict_id]
            decompressor = mine[dict_id] = zstandard.ZstdDecompressor(
                dict_data=self._dicts[dict_id]
            )
        try:
            return bytes(decompressor.decompress(frame))
        except zstandard.ZstdError as exc:
            return (
                f"the stored value does not decompress with dictionary {dict_id} "
                f"(the value or the dictionary is damaged): {exc}"
            )

    def _fetch(self, dict_id: int) -> bool:
        """Load dictionary ``dict_id``; False (the reason kept) when it cannot be used."""
        if dict_id in self._missing:
            return False
        try:
            dictionary = self._load(dict_id)
            if dictionary is None:
                raise LookupError(f"payload dictionary {dict_id} is missing from the database")
            self.use(dict_id, dictionary, current=False)
        except (LookupError, ValueError, zstandard.ZstdError) as exc:
            reason = str(exc) if isinstance(exc, LookupError) else f"dictionary {dict_id}: {exc}"
            with self._lock:
                self._missing[dict_id] = reason
            return False
        return True

    def forget_missing(self) -> None:
        """Look missing dictionaries up again on their next use (after a repair)."""
        with self._lock:
            self._missing.clear()
