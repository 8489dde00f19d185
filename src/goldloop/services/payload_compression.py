"""When a SQLite database starts compressing its runs' payloads, and with which dictionary.

At start the newest stored dictionary is used. Without one, ingest checks (every
``CHECK_EVERY_US`` or ``CHECK_EVERY_RUNS`` written runs) whether the database holds ``MIN_RUNS``
runs; then a dictionary is trained
on the large documents of the newest ``SAMPLE_RUNS`` runs and stored, and new writes are
compressed with it. Runs written before stay text until ``goldloop payloads compact`` rewrites
them (``services.payload_maintenance``, which also retrains). The dictionary is put
to use only after the transaction that stored it committed, so no stored frame can name a
dictionary that is not in the database. PostgreSQL: nothing to do (TOAST compresses).
"""

from __future__ import annotations

import logging
import threading

import zstandard

from goldloop.domain import payload_codec
from goldloop.domain.payload_codec import PayloadCodec
from goldloop.services.context import ServiceContext
from goldloop.store import payload_store

log = logging.getLogger("goldloop.store")

MIN_RUNS = 1000
SAMPLE_RUNS = 2000
CHECK_EVERY_US = 60_000_000
CHECK_EVERY_RUNS = 500

_training = threading.Lock()


def _codec(ctx: ServiceContext) -> PayloadCodec | None:
    found = payload_store.codec(ctx.db.engine)
    if found is not None:
        found.enabled = ctx.settings.payload_compression
    return found


def start(ctx: ServiceContext) -> None:
    """Use the newest stored dictionary, if there is one (server start)."""
    codec = _codec(ctx)
    if codec is not None:
        _use_stored(ctx, codec)


def worker_dictionary(ctx: ServiceContext) -> tuple[int, bytes] | None:
    """The dictionary ingest worker processes should compress new runs with (SQLite, in use
    here, so stored and committed), or None: they leave the documents as text."""
    codec = _codec(ctx)
    if codec is None or codec.current is None or not codec.enabled:
        return None
    return codec.current, codec.current_data


def _use_stored(ctx: ServiceContext, codec: PayloadCodec) -> bool:
    """Compress with the newest stored dictionary; False when there is none, or it is damaged
    (then the next training stores a new one beside it: frames naming it still read what
    they can)."""
    stored = ctx.db.read(payload_store.newest)
    return stored is not None and payload_store.use_dictionary(codec, stored)


def after_ingest(ctx: ServiceContext, written: int) -> None:
    """Train the database's first dictionary once it holds enough runs, ``written`` runs having
    just been stored. Cheap when it need not: it looks at the database once per
    ``CHECK_EVERY_US`` or per ``CHECK_EVERY_RUNS`` runs this process wrote, whichever is first."""
    codec = _codec(ctx)
    if codec is None or codec.current is not None or not codec.enabled:
        return
    now = ctx.clock()
    codec.written_since += written
    if now < codec.next_check and codec.written_since < CHECK_EVERY_RUNS:
        return
    codec.next_check, codec.written_since = now + CHECK_EVERY_US, 0
    if not _training.acquire(blocking=False):
        return
    try:
        if _use_stored(ctx, codec):  # another process may have trained one
            return
        if ctx.db.read(lambda conn: payload_store.enough_runs(conn, MIN_RUNS)):
            train(ctx)
    except Exception:  # compression is an optimisation: ingest goes on uncompressed
        log.exception("could not train a payload dictionary")
    finally:
        _training.release()


def train_first(ctx: ServiceContext) -> None:
    """Train the database's first dictionary now, if it has none and holds enough runs (what
    ingest does on its next check; ``goldloop payloads compact`` does not wait for it)."""
    codec = _codec(ctx)
    if codec is None or codec.current is not None:
        return
    with _training:
        if _use_stored(ctx, codec):
            return
        if ctx.db.read(lambda conn: payload_store.enough_runs(conn, MIN_RUNS)):
            train(ctx)


def train(ctx: ServiceContext) -> int | None:
    """Train a dictionary on the newest runs, store it and compress with it from now on;
    returns its id, or None (SQLite only) when the runs are too few to train on."""
    codec = _codec(ctx)
    if codec is None:
        return None
    samples = ctx.db.read(lambda conn: payload_store.samples(conn, SAMPLE_RUNS))
    try:
        trained = payload_codec.train(samples, payload_codec.FIRST_ID)
    except zstandard.ZstdError as exc:
        log.info("no payload dictionary yet (%d documents to train on): %s", len(samples), exc)
        return None
    now = ctx.clock()
    dict_id, data = ctx.db.write(lambda conn: payload_store.store(conn, trained, len(samples), now))
    codec.use(dict_id, data)  # committed: from now on frames may name it
    log.info(
        "payload dictionary %d trained on %d documents; runs stored before stay text until "
        "`goldloop payloads compact`",
        dict_id,
        len(samples),
    )
    return dict_id
