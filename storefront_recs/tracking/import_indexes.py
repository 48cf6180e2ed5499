"""Deferring the events table's lookup indexes during a large backfill import.

Keeping five lookup indexes up to date row by row costs an import more than the rows
themselves once the indexes outgrow the database's cache; building them once at the end, from
the finished table, costs a fraction of that. The unique ``(event_id, line_no, origin)`` key is never
dropped: it is what keeps an import idempotent.

While the indexes are gone, queries that use them (a visitor's history, an item's events)
scan the table, so ``auto`` defers them only for a backfill: a large file into a table that
holds fewer events than the file. An import that dies midway leaves them missing; the next
import puts them back first (``restore_indexes``), and so does ``flask recs db upgrade``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, cast

from sqlalchemy import Engine, Index, Table, func, inspect, select

from ..db import larger_sqlite_cache
from ..models import Event

IndexMode = Literal["auto", "defer", "keep"]
INDEX_MODES: tuple[IndexMode, ...] = ("auto", "defer", "keep")
DEFER_MIN_ROWS = 100_000  # below this, keeping the indexes costs too little to matter
SAMPLE_BYTES = 256 * 1024
BUILD_SQLITE_CACHE_KB = 262_144


def lookup_indexes() -> list[Index]:
    """The events table's non-unique indexes (the unique key is never deferred)."""
    table = cast(Table, Event.__table__)
    return sorted((ix for ix in table.indexes if not ix.unique), key=lambda ix: str(ix.name))


def estimated_rows(path: str) -> int:
    """Lines in a file, estimated from the mean length of its first lines."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        sample = handle.read(SAMPLE_BYTES)
    lines = sample.count(b"\n")
    return size // max(len(sample) // lines, 1) if lines else 0


def should_defer(engine: Engine, path: str, mode: IndexMode) -> bool:
    """Whether to defer: always, never, or (``auto``) for a large file into a smaller table."""
    if mode != "auto":
        return mode == "defer"
    rows = estimated_rows(path)
    if rows < DEFER_MIN_ROWS:
        return False
    with engine.connect() as conn:  # the id range bounds the row count without a full count
        first, last = conn.execute(select(func.min(Event.id), func.max(Event.id))).one()
    stored = 0 if first is None else last - first + 1
    return bool(stored < rows)


def restore_indexes(engine: Engine) -> list[str]:
    """Create whichever lookup indexes are missing; returns their names."""
    with engine.connect() as conn:
        present = {found["name"] for found in inspect(conn).get_indexes(Event.__tablename__)}
        conn.rollback()  # end the inspection's transaction before the build's own
        missing = [ix for ix in lookup_indexes() if ix.name not in present]
        if not missing:
            return []
        with larger_sqlite_cache(conn, BUILD_SQLITE_CACHE_KB), conn.begin():
            for ix in missing:
                ix.create(conn)
    return [str(ix.name) for ix in missing]


@contextmanager
def indexes_deferred(engine: Engine, defer: bool) -> Iterator[None]:
    """Drop the lookup indexes for the block (when ``defer``) and build them again after it,
    whether the block succeeds or fails."""
    restore_indexes(engine)  # a previous import may have died with them dropped
    if not defer:
        yield
        return
    with engine.begin() as conn:
        for ix in lookup_indexes():
            ix.drop(conn)
    try:
        yield
    finally:
        restore_indexes(engine)

