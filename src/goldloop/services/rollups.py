"""The hourly rollup worker: keeps ``run_rollups`` up to date by tailing the runs log.

Each tick reads the log's horizon (``store.log_horizon``: on PostgreSQL no run that commits late
is skipped), then recomputes from the runs every (project, hour) touched by the next
``BATCH_SEQS`` runs past its cursor and every marked hour, and stores them with the new cursor in
one transaction, if no other worker wrote since it read (the state's ``version``).

On a database whose log is far ahead of the cursor (the first start after the upgrade, or a
worker that was off for long) it *backfills* instead: project by project, ``BACKFILL_HOURS`` of
runs per tick, then moves the cursor to the horizon it started from. Readers never depend on it:
an hour that is not clean is computed from the runs (``services.rollup_reads``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from goldloop.domain import latency_histogram as lh
from goldloop.services.context import ServiceContext
from goldloop.store import log_horizon
from goldloop.store import rollups as store
from goldloop.store.rollup_pieces import HOUR, Piece, compute, hour_of
from goldloop.store.schema import runs

BATCH_SEQS = 20_000
MARKS_PER_TICK = 5_000
BACKFILL_AT = 200_000  # runs past the cursor from which a tick backfills instead
BACKFILL_HOURS = 24


Figures = dict[store.Hour, tuple[str, Piece]]
_TailRead = tuple[int, int, int, set[store.Hour], list[int], Figures]


class _Conflict(Exception):
    """Another worker wrote the state since this one read it."""


def _spans(hours: set[int]) -> list[tuple[int, int]]:
    """Contiguous [start, end) spans of these hour starts."""
    out: list[tuple[int, int]] = []
    for h in sorted(hours):
        if out and out[-1][1] == h:
            out[-1] = (out[-1][0], h + HOUR)
        else:
            out.append((h, h + HOUR))
    return out


def recompute(conn: Connection, hours: set[store.Hour]) -> Figures:
    """The figures of these hours from the runs (hours without runs are left out)."""
    by_project: dict[str, set[int]] = {}
    for pid, h in hours:
        by_project.setdefault(pid, set()).add(h)
    out: Figures = {}
    for pid, starts in by_project.items():
        for lo, hi in _spans(starts):
            found = compute(conn, [pid], start=lo, end=hi, origin=0, bucket_us=HOUR)
            for (ws, p, _, hour), piece in found.items():
                lh.add_values(piece.root_hist, piece.root_values)
                lh.add_values(piece.run_hist, piece.run_values)
                piece.root_values, piece.run_values = [], []
                out[(p, hour)] = (ws, piece)
    return out


@dataclass
class _Backfill:
    target: int  # the cursor once done
    spans: list[tuple[str, int, int]]  # (project id, first start, last start) still to do
    position: int | None = None  # the next hour of spans[0]


@dataclass
class RollupWorker:
    """``tick()`` returns how many hours it recomputed (0: nothing to do)."""

    ctx: ServiceContext
    backfill: _Backfill | None = None
    backfilled_hours: int = field(default=0)

    def tick(self) -> int:
        db = self.ctx.db
        top = db.read(lambda c: log_horizon.horizon(c, runs.c.seq, "runs_seq"))
        if self.backfill is None:
            cursor, _ = db.read(store.state)
            if top - cursor > BACKFILL_AT:
                self.backfill = _Backfill(top, db.read(store.project_spans))
        try:
            return self._backfill_step() if self.backfill else self._tail_step(top)
        except _Conflict:
            self.backfill = None
            return 0

    def _tail_step(self, top: int) -> int:
        def read(conn: Connection) -> _TailRead:
            cursor, version = store.state(conn)
            upto = min(top, cursor + BATCH_SEQS)
            hours = store.touched_hours(conn, cursor, upto) if upto > cursor else set()
            marks = store.take_marks(conn, MARKS_PER_TICK)
            hours.update((pid, h) for _, pid, h in marks)
            return cursor, version, upto, hours, [pk for pk, _, _ in marks], recompute(conn, hours)

        cursor, version, upto, hours, marks, figures = self.ctx.db.read(read)
        if upto == cursor and not marks:
            return 0

        def write(conn: Connection) -> None:
            if not store.advance(conn, version, upto):
                raise _Conflict
            store.replace(conn, hours, figures)
            store.drop_marks(conn, marks)

        self.ctx.db.write(write)
        return max(len(hours), 1)

    def _backfill_step(self) -> int:
        bf = self.backfill
        assert bf is not None
        if not bf.spans:
            target = bf.target

            def finish(conn: Connection) -> None:
                cursor, version = store.state(conn)
                if not store.advance(conn, version, max(cursor, target)):
                    raise _Conflict

            self.ctx.db.write(finish)
            self.backfill = None
            return 1
        pid, first, last = bf.spans[0]
        lo = bf.position if bf.position is not None else hour_of(first)
        hi = lo + BACKFILL_HOURS * HOUR

        def read(conn: Connection) -> tuple[int, set[store.Hour], Figures]:
            _, version = store.state(conn)
            hours = {(pid, h) for h in range(lo, hi, HOUR)}
            return version, hours, recompute(conn, hours)

        version, hours, figures = self.ctx.db.read(read)

        def write(conn: Connection) -> None:
            cursor, now_version = store.state(conn)
            if now_version != version or not store.advance(conn, version, cursor):
                raise _Conflict
            store.replace(conn, hours, figures)

        self.ctx.db.write(write)
        self.backfilled_hours += len(figures)
        if hi > last:
            bf.spans.pop(0)
            bf.position = None
        else:
            bf.position = hi
        return max(len(figures), 1)
