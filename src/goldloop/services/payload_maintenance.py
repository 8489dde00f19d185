"""Rewriting the stored run payloads of a SQLite database (``goldloop payloads compact|retrain``).

- ``compact``: compresses every payload still stored as text (the runs written before the
  database had a dictionary, or with ``payload_compression`` off) with the newest dictionary.
- ``retrain``: trains a new dictionary on the newest runs (decompressed) and makes it the one
  every process compresses with from its next write on; with ``recompress`` it also rewrites
  every frame onto it, compacts what is text, and deletes the dictionaries no frame names any
  more, so the text fragments of erased runs that an old dictionary kept leave the database.

Both go a bounded batch at a time: one read snapshot, compression here, then one short write
transaction through the store's single writer that replaces a value only if it is still the one
read (``store.payload_compaction``). Ingest goes on in between; an interrupted run leaves every
row readable, text or frame, and running again continues where it is needed. A batch compressed
with a dictionary that is no longer the newest when it is written (another process retrained)
is compressed again with the newest. PostgreSQL: nothing to do, TOAST compresses (lz4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import zstandard

from goldloop.domain import payload_codec
from goldloop.domain.errors import GoldloopError, InvalidInput
from goldloop.domain.payload_codec import PayloadCodec
from goldloop.services import payload_compression
from goldloop.services.context import ServiceContext
from goldloop.store import payload_compaction, payload_store
from goldloop.store.payload_compaction import Change

BATCH_ROWS = 500
# Runs whose frame headers are read per snapshot when looking for the dictionaries still named.
_SCAN_ROWS = 5000

POSTGRESQL = (
    "PostgreSQL compresses the runs' inputs, outputs and extra itself (TOAST, lz4 since "
    "migration 0028): there is no dictionary and nothing to compact or retrain."
)


@dataclass
class Rewritten:
    """What one pass over the runs did."""

    rows: int = 0  # runs with at least one value replaced
    values: int = 0  # values replaced
    bytes_before: int = 0  # their stored size before
    bytes_after: int = 0  # and after
    unreadable: int = 0  # frames left as they are: their dictionary is missing or damaged
    lost_races: int = 0  # values another writer changed between read and write (left alone)
    complete: bool = True  # False when stopped by ``max_rows`` with more to do


@dataclass
class Retrained:
    dictionary: int
    samples: int
    recompressed: Rewritten | None = None
    compacted: Rewritten | None = None
    dropped: list[int] = field(default_factory=list)  # dictionaries deleted
    kept: list[int] = field(default_factory=list)  # older dictionaries frames still name


# phase ("compact" or "recompress"), the pk reached, the largest pk, the pass so far
Progress = Callable[[str, int, int, Rewritten], None]


class NothingToDo(GoldloopError):
    """The database has no dictionary to compress with, or compresses in another way."""

    code = "nothing_to_do"


def _codec(ctx: ServiceContext) -> PayloadCodec:
    """The codec that compresses with the database's newest dictionary (SQLite, compression
    on); ``NothingToDo`` on PostgreSQL, ``InvalidInput`` when compression is off."""
    if not ctx.db.is_sqlite:
        raise NothingToDo(POSTGRESQL)
    if not ctx.settings.payload_compression:
        raise InvalidInput(
            "payload_compression is off (GOLDLOOP_PAYLOAD_COMPRESSION): turn it on to compact "
            "or retrain"
        )
    found = payload_store.codec(ctx.db.engine)
    assert found is not None  # every SQLite engine has one (database.create_engine)
    payload_compression.start(ctx)
    return found


def compact(
    ctx: ServiceContext,
    *,
    batch_rows: int = BATCH_ROWS,
    max_rows: int | None = None,
    progress: Progress | None = None,
) -> Rewritten:
    """Compress every payload stored as text that is long enough, with the newest dictionary
    (training the first one if the database has enough runs and none yet). ``max_rows`` stops
    after about that many runs (``complete`` then says whether any were left)."""
    codec = _codec(ctx)
    if codec.current is None:
        payload_compression.train_first(ctx)
        if codec.current is None:
            raise NothingToDo(
                f"no payload dictionary yet: one is trained once the database holds "
                f"{payload_compression.MIN_RUNS:,} runs, then compact compresses the runs "
                "stored before it"
            )
    done = Rewritten()
    top = ctx.db.read(payload_compaction.max_pk)
    after = 0
    while True:
        limit = batch_rows if max_rows is None else min(batch_rows, max_rows - done.rows)
        if limit <= 0:
            done.complete = not ctx.db.read(
                partial(payload_compaction.long_texts, after_pk=after, limit=1)
            )
            return done
        batch = ctx.db.read(partial(payload_compaction.long_texts, after_pk=after, limit=limit))
        if not batch:
            return done
        changes = [
            Change(pk, column, text, text)
            for pk, texts in batch
            for column, text in zip(payload_store.COMPRESSED_COLUMNS, texts, strict=True)
            if text is not None
        ]
        _apply(ctx, codec, changes, done)
        after = batch[-1][0]
        if progress is not None:
            progress("compact", after, top, done)


def retrain(
    ctx: ServiceContext,
    *,
    recompress: bool = False,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
) -> Retrained:
    """Train a dictionary on the newest runs and compress new writes with it; with
    ``recompress``, move every frame onto it, compact the text, and delete the dictionaries
    no frame names any more."""
    codec = _codec(ctx)
    samples = ctx.db.read(lambda conn: payload_store.samples(conn, payload_compression.SAMPLE_RUNS))
    if not samples:
        raise NothingToDo(
            "no run payloads to train a dictionary on yet: one is trained once the database "
            f"holds {payload_compression.MIN_RUNS:,} runs"
        )
    try:
        trained = payload_codec.train(samples, payload_codec.FIRST_ID)
    except zstandard.ZstdError as exc:
        raise NothingToDo(
            f"cannot train a dictionary on {len(samples)} documents of the newest runs: {exc}"
        ) from None
    now = ctx.clock()
    dict_id, data = ctx.db.write(lambda conn: payload_store.store(conn, trained, len(samples), now))
    codec.use(dict_id, data)
    report = Retrained(dictionary=dict_id, samples=len(samples))
    if not recompress:
        report.kept = [i for i in ctx.db.read(payload_compaction.dictionaries) if i != dict_id]
        return report
    report.recompressed = _recompress(ctx, codec, batch_rows, progress)
    report.compacted = compact(ctx, batch_rows=batch_rows, progress=progress)
    report.dropped, report.kept = _drop_unnamed(ctx, dict_id)
    return report


def _recompress(
    ctx: ServiceContext, codec: PayloadCodec, batch_rows: int, progress: Progress | None
) -> Rewritten:
    """Rewrite every frame that names another dictionary than the newest."""
    done = Rewritten()
    top = ctx.db.read(payload_compaction.max_pk)
    after = 0
    while True:
        batch = ctx.db.read(
            partial(payload_compaction.frame_dictionaries, after_pk=after, limit=batch_rows)
        )
        if not batch:
            return done
        after = batch[-1][0]
        current = codec.current
        stale = [pk for pk, named in batch if any(n not in (None, current) for n in named)]
        stored = ctx.db.read(partial(payload_compaction.payloads, pks=stale))
        changes: list[Change] = []
        for pk, values in stored.items():
            for column, value in zip(payload_store.COMPRESSED_COLUMNS, values, strict=True):
                if type(value) is not bytes or not payload_codec.is_frame(value):
                    continue
                try:
                    if payload_codec.frame_dictionary(value) == current:
                        continue
                except zstandard.ZstdError:
                    pass  # counted as unreadable below
                changes.append(Change(pk, column, value, value))
        _apply(ctx, codec, changes, done)
        if progress is not None:
            progress("recompress", after, top, done)


def _apply(
    ctx: ServiceContext, codec: PayloadCodec, changes: list[Change], done: Rewritten
) -> None:
    """Compress each change's value with the newest dictionary and write the batch; when the
    newest changed meanwhile, take it up and compress again. Adds what happened to ``done``."""
    while True:
        dict_id = codec.current
        assert dict_id is not None
        made: list[Change] = []
        unreadable = 0
        for change in changes:
            new = _remade(codec, change.old)
            if new is None:
                unreadable += 1
            elif type(new) is bytes and new != change.old:
                made.append(Change(change.pk, change.column, change.old, new))
        if not made:
            done.unreadable += unreadable
            return
        applied = ctx.db.write(partial(payload_compaction.replace, changes=made, dict_id=dict_id))
        if applied is not None:
            break
        payload_compression.start(ctx)  # a newer dictionary was stored: use it
        if codec.current == dict_id:
            raise NothingToDo("the newest payload dictionary cannot be used (see the log)")
    done.unreadable += unreadable
    done.lost_races += len(made) - len(applied)
    done.values += len(applied)
    done.rows += len({c.pk for c in applied})
    done.bytes_before += sum(_size(c.old) for c in applied)
    done.bytes_after += sum(_size(c.new) for c in applied)


def _remade(codec: PayloadCodec, old: str | bytes) -> str | bytes | None:
    """``old`` (text or frame) compressed with the codec's newest dictionary; None when it is a
    frame that cannot be read (it is left as it is: rewriting would lose it)."""
    if type(old) is str:
        return codec.compress(old)
    assert isinstance(old, bytes)
    text = codec.try_decompress(old)
    return None if text is None else codec.compress(text.decode())


def _size(value: str | bytes) -> int:
    return len(value.encode()) if isinstance(value, str) else len(value)


def _drop_unnamed(ctx: ServiceContext, current: int) -> tuple[list[int], list[int]]:
    """Delete the dictionaries older than ``current`` that no stored frame names (the newest
    is never deleted: writers compress with it); returns (dropped, kept)."""
    named: set[int] = set()
    after = 0
    while True:
        batch = ctx.db.read(
            partial(payload_compaction.frame_dictionaries, after_pk=after, limit=_SCAN_ROWS)
        )
        if not batch:
            break
        after = batch[-1][0]
        named.update(n for _, ids in batch for n in ids if n is not None)
    stored = ctx.db.read(payload_compaction.dictionaries)
    doomed = [i for i in stored if i < current and i not in named]
    ctx.db.write(lambda conn: payload_compaction.drop_dictionaries(conn, doomed))
    return doomed, [i for i in stored if i < current and i in named]
