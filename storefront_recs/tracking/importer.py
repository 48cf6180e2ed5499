"""``flask recs import-events FILE``: historical events from CSV, idempotent and streamed.

Header ``user_id,item_id,type,timestamp[,quantity,value,event_id]``; the file's timestamps are
kept. A row without ``event_id`` gets one derived from its content and occurrence number, so a
re-import stores nothing twice while genuinely repeated rows are all kept.

Rows are checked by plain code here rather than the marshmallow ``EventSchema``: the rules are
the same (types, lengths, ranges from ``schemas``), but a million rows must import in seconds.
Batches go to the database in event-id order, so the unique index is filled page by page
rather than at random: on SQLite through ``executemany``, on PostgreSQL through ``COPY`` into a
temporary table and one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Engine

from ..db import larger_sqlite_cache
from ..importing import ImportReport, counting_lines, is_jsonl, iter_records, require_columns
from ..models import ITEM_ID_LENGTH
from ..privacy.suppression import Suppressions
from ..safe_input import has_bad_character
from .import_indexes import IndexMode, indexes_deferred, should_defer
from .schemas import (
    EPOCH,
    EVENT_ID_PATTERN,
    EVENT_TYPES,
    MAX_QUANTITY,
    MAX_VALUE,
    SECONDS_DIGITS,
    parse_timestamp,
)

if TYPE_CHECKING:
    import psycopg  # an optional dependency: only PostgreSQL imports use it

REQUIRED_COLUMNS = ("user_id", "item_id", "type", "timestamp")
OPTIONAL_COLUMNS = ("quantity", "value", "event_id")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
EVENT_ID_RE = re.compile(EVENT_ID_PATTERN)
TYPES = frozenset(EVENT_TYPES)

# One event row as written: event_id, type, user_key, item_id, quantity, value, ts. ``ts`` is
# text in the form SQLAlchemy's SQLite DateTime stores, which PostgreSQL's COPY reads too.
EventRow = tuple[str, str, str, str, int, float | None, str]


class RowError(ValueError):
    pass


class SuppressedRow(RowError):
    """The row's user was erased and is on the suppression list."""


@dataclass
class EventImportReport(ImportReport):
    """An import report that also counts rows skipped for erased (suppressed) users."""

    suppressed: int = 0

    def summary(self) -> str:
        text = super().summary()
        return f"{text}, skipped {self.suppressed} of erased users" if self.suppressed else text


@cache
def _times_of_day() -> list[str]:
    """'HH:MM:SS.000000' for each second of a day (86,400 short strings, made once)."""
    return [f"{h:02d}:{m:02d}:{s:02d}.000000" for h in range(24) for m in range(60) for s in range(60)]


class EventRowParser:
    """Turns the cells of CSV rows into event rows, deriving stable event ids.

    ``header`` names the file's columns; a row must not have more cells than it, and missing
    trailing cells count as empty.
    """

    def __init__(
        self,
        header: Sequence[str],
        user_key: Callable[[str], str],
        max_future: timedelta,
        suppressed: Callable[[str], bool] = lambda _: False,
        max_quantity: int = MAX_QUANTITY,
        max_value: float = MAX_VALUE,
    ) -> None:
        self.width = len(header)
        self.max_quantity = max_quantity
        self.max_value = max_value
        position = {name: index for index, name in enumerate(header)}
        # Absent optional columns point one past the row, at the empty cell ``parse`` appends.
        self._columns = itemgetter(*(position.get(name, self.width) for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS))
        self._user_key = user_key
        self._suppressed = suppressed
        self._user_keys: dict[str, str | None] = {}  # user id -> stored key, None if suppressed
        self._occurrences: dict[str, int] = {}
        self._latest = datetime.now(UTC).replace(tzinfo=None) + max_future
        self._latest_seconds = (self._latest - EPOCH).total_seconds()
        self._dates: dict[int, str] = {}

    def parse(self, cells: list[str]) -> EventRow:
        if len(cells) > self.width:
            raise RowError("more cells than header columns")
        if len(cells) < self.width:
            cells.extend([""] * (self.width - len(cells)))
        cells.append("")
        user_id, item_id, kind, stamp, quantity_text, value_text, event_id = map(str.strip, self._columns(cells))
        if not user_id:
            raise RowError("user_id is empty")
        if has_bad_character(user_id) or has_bad_character(item_id):
            raise RowError("user_id and item_id must be valid UTF-8 text without NUL characters")
        if not item_id or len(item_id) > ITEM_ID_LENGTH:
            raise RowError(f"item_id must be 1 to {ITEM_ID_LENGTH} characters")
        if kind not in TYPES:
            raise RowError(f"unknown type {kind!r}")
        ts = self._timestamp(stamp)
        quantity = self._quantity(quantity_text) if quantity_text else 1
        value = self._value(value_text) if value_text else None
        if event_id:
            if not EVENT_ID_RE.match(event_id):
                raise RowError("event_id must be 8 to 64 characters of A-Z a-z 0-9 _ . : -")
        else:
            content = "\x1f".join((user_id, item_id, kind, stamp, str(quantity), str(value)))
            occurrence = self._occurrences[content] = self._occurrences.get(content, 0) + 1
            digest = hashlib.sha1(f"{content}\x1e{occurrence}".encode()).hexdigest()
            event_id = f"imp-{digest[:40]}"
        try:
            user_key = self._user_keys[user_id]
        except KeyError:
            user_key = self._user_key(user_id)
            user_key = self._user_keys[user_id] = None if self._suppressed(user_key) else user_key
        if user_key is None:
            raise SuppressedRow("user was erased and is suppressed")
        return event_id, kind, user_key, item_id, quantity, value, ts

    def _timestamp(self, stamp: str) -> str:
        """The stored text of a timestamp; whole unix seconds (the common export) are written
        from a cache of dates and a table of the day's seconds, not through ``datetime``."""
        if len(stamp) <= SECONDS_DIGITS and stamp.isdigit() and stamp.isascii():
            seconds = int(stamp)
            if seconds > self._latest_seconds:
                raise RowError("timestamp is in the future")
            day, second = divmod(seconds, 86_400)
            date = self._dates.get(day)
            if date is None:
                date = self._dates[day] = f"{EPOCH + timedelta(days=day):%Y-%m-%d} "
            return date + _times_of_day()[second]
        try:
            ts = parse_timestamp(stamp)
        except (ValueError, OverflowError, OSError):
            raise RowError(f"timestamp {stamp!r} is neither ISO-8601 nor unix seconds") from None
        if ts > self._latest:
            raise RowError("timestamp is in the future")
        return ts.isoformat(" ", "microseconds")

    def _quantity(self, text: str) -> int:
        number = _number(text, "quantity")
        if not 1 <= number <= self.max_quantity:
            raise RowError(f"quantity must be 1 to {self.max_quantity}")
        return int(number)

    def _value(self, text: str) -> float:
        value = _number(text, "value")
        if not 0 <= value <= self.max_value:
            raise RowError(f"value must be a number from 0 to {self.max_value:g}")
        return value


def _number(text: str, name: str) -> float:
    """A finite number written in ASCII (``float`` alone would read full-width digits and 'inf')."""
    try:
        number = float(text) if text.isascii() else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise RowError(f"{name} {text!r} is not a finite number")
    return number


WRITTEN = ("event_id", "type", "user_key", "item_id", "quantity", "value", "ts")
# Every imported row has line_no 0, no anonymous id, client time or context, source 'import'
# and origin 'shop' (an import is the shop's own data: its event ids share recs.track's namespace).
INSERT_COLUMNS = ("event_id, line_no, type, user_key, anonymous_id, item_id, quantity, value, ts, client_ts, source, "
                  "origin, context")
SELECTED = "event_id, 0, type, user_key, NULL, item_id, quantity, value, ts, NULL, 'import', 'shop', NULL"
CONFLICT = "ON CONFLICT (event_id, line_no, origin) DO NOTHING"
STAGING = "recs_import_events"
IMPORT_SQLITE_CACHE_KB = 262_144


def bulk_insert(conn: Connection, rows: list[EventRow]) -> int:
    """Insert event rows, skipping stored ones; returns how many were new.

    Rows go in event-id order (stable, so of two rows with one id the first in the file wins).
    At import volumes SQLAlchemy's per-row parameter handling costs more than the insert
    itself, so this talks to the driver: ``executemany`` on SQLite, ``COPY`` on PostgreSQL.
    """
    if not rows:
        return 0
    rows = sorted(rows, key=itemgetter(0))
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name == "sqlite":
            cursor.executemany(
                f"INSERT INTO recs_events ({INSERT_COLUMNS}) VALUES (?, 0, ?, ?, NULL, ?, ?, ?, ?, NULL, 'import', "
                f"'shop', NULL) {CONFLICT}",
                rows,
            )
            return int(cursor.rowcount)
        if conn.dialect.driver != "psycopg":
            raise NotImplementedError(
                f"import-events on PostgreSQL needs the psycopg 3 driver (postgresql+psycopg://), "
                f"not {conn.dialect.driver}"
            )
        return _copy_insert(cast("psycopg.Cursor[Any]", cursor), rows)
    finally:
        cursor.close()


def _copy_insert(cursor: psycopg.Cursor[Any], rows: list[EventRow]) -> int:
    """PostgreSQL: COPY the rows into a temporary table, then insert what is not stored yet.

    ``n`` keeps the COPY order, so the insert sees the rows in the order they were sorted in.
    """
    cursor.execute(
        f"CREATE TEMPORARY TABLE {STAGING} (n bigserial, event_id text, type text, user_key text, item_id text, "
        "quantity integer, value double precision, ts timestamp) ON COMMIT DROP"
    )
    with cursor.copy(f"COPY {STAGING} ({', '.join(WRITTEN)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    cursor.execute(
        f"INSERT INTO recs_events ({INSERT_COLUMNS}) SELECT {SELECTED} FROM {STAGING} ORDER BY n {CONFLICT}"
    )
    return int(cursor.rowcount)


class BatchWriter:
    """Writes batches, one transaction each, on one connection in a background thread.

    The database inserts one batch while the next is parsed: on PostgreSQL the server runs the
    whole ``INSERT ... SELECT`` while Python parses, so with two cores an import takes about as
    long as the slower of the two rather than their sum; SQLite's driver gives up the GIL only
    row by row, so there the overlap is smaller. At most two batches are in memory: the one
    being written and the one being filled. The report's counts are updated in the caller's
    thread, when a write is waited for.
    """

    def __init__(self, engine: Engine, report: ImportReport) -> None:
        self._engine = engine
        self._report = report
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recs-import")
        self._pending: tuple[Future[int], int] | None = None

    def __enter__(self) -> BatchWriter:
        self._conn = self._engine.connect()
        # A 1M-event import builds ~300 MB of indexes; a bigger page cache on this one
        # connection (given back at the end) keeps more of them in memory: ~15% less CPU.
        self._cache = ExitStack()
        self._cache.enter_context(larger_sqlite_cache(self._conn, IMPORT_SQLITE_CACHE_KB))
        return self

    def submit(self, rows: list[EventRow]) -> None:
        """Wait for the previous batch, then start writing this one."""
        self.wait()
        if rows:
            self._pending = self._pool.submit(self._write, rows), len(rows)

    def wait(self) -> None:
        if self._pending is not None:
            (future, size), self._pending = self._pending, None
            stored = future.result()
            self._report.stored += stored
            self._report.duplicates += size - stored

    def _write(self, rows: list[EventRow]) -> int:
        with self._conn.begin():
            return bulk_insert(self._conn, rows)

    def __exit__(self, *exc: object) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown()
            self._cache.close()
            self._conn.close()


def import_events(
    engine: Engine,
    path: str,
    user_key: Callable[[str], str],
    max_future: timedelta,
    batch_size: int = 50_000,
    on_progress: Callable[[int], None] = lambda _: None,
    suppressions: Suppressions | None = None,
    indexes: IndexMode = "auto",
    max_quantity: int = MAX_QUANTITY,
    max_value: float = MAX_VALUE,
) -> EventImportReport:
    """Import a CSV (or JSONL) file of events; rows of suppressed (erased) users are skipped and counted.

    ``suppressions``: the app's suppression list, read once at the start (None: nothing is suppressed).
    ``indexes``: build the events table's lookup indexes once at the end instead of row by row
    ("defer"), never ("keep"), or for a backfill only ("auto"; see ``import_indexes``).
    """
    # Bytes that are not UTF-8 become lone surrogates, and their rows are rejected one by one.
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        require_columns(path, handle, REQUIRED_COLUMNS)
        lines = counting_lines(handle, on_progress)
        if is_jsonl(path):
            header: Sequence[str] = COLUMNS
            rows: Iterable[tuple[int, list[str], str | None]] = record_rows(iter_records(lines, path))
        else:
            reader = csv.reader(lines)
            header = tuple(next(reader))
            rows = ((reader.line_num, cells, None) for cells in reader)
        return import_event_rows(engine, header, rows, user_key, max_future, batch_size, suppressions,
                                 should_defer(engine, path, indexes), max_quantity, max_value)


def import_event_records(
    engine: Engine,
    records: Iterable[Mapping[str, Any]],
    user_key: Callable[[str], str],
    max_future: timedelta,
    batch_size: int = 50_000,
    suppressions: Suppressions | None = None,
    max_quantity: int = MAX_QUANTITY,
    max_value: float = MAX_VALUE,
) -> EventImportReport:
    """Import event records (dicts with the CSV's columns), e.g. from an importer plugin."""
    numbered = ((number, dict(record), None) for number, record in enumerate(records, start=1))
    return import_event_rows(engine, COLUMNS, record_rows(numbered), user_key, max_future, batch_size,
                             suppressions, False, max_quantity, max_value)


def record_rows(records: Iterable[tuple[int, dict[str, Any] | None, str | None]]
                ) -> Iterator[tuple[int, list[str], str | None]]:
    """JSON records as CSV cells in ``COLUMNS`` order (numbers as text, absent as empty)."""
    for number, record, error in records:
        if record is None:
            yield number, [], error or "unreadable"
            continue
        surplus = sorted(set(record) - set(COLUMNS))
        if surplus:
            yield number, [], f"unknown field(s) {', '.join(surplus)}"
            continue
        yield number, ["" if record.get(c) is None else str(record[c]) for c in COLUMNS], None


def import_event_rows(
    engine: Engine,
    header: Sequence[str],
    rows: Iterable[tuple[int, list[str], str | None]],
    user_key: Callable[[str], str],
    max_future: timedelta,
    batch_size: int,
    suppressions: Suppressions | None,
    defer: bool,
    max_quantity: int = MAX_QUANTITY,
    max_value: float = MAX_VALUE,
) -> EventImportReport:
    """The import itself: ``rows`` are ``(line number, cells in header order, error)``."""
    report = EventImportReport()
    suppressed: Callable[[str], bool] = lambda _: False  # noqa: E731
    if suppressions is not None:
        with engine.connect() as conn:
            suppressed = suppressions.user_checker(conn)
    parser = EventRowParser(header, user_key, max_future, suppressed, max_quantity, max_value)
    batch: list[EventRow] = []
    with indexes_deferred(engine, defer), BatchWriter(engine, report) as writer:
        for number, cells, error in rows:
            if not cells and error is None:
                continue  # a blank line
            report.read += 1
            if error is not None:
                report.bad(number, error)
                continue
            try:
                batch.append(parser.parse(cells))
            except SuppressedRow:
                report.suppressed += 1
                continue
            except RowError as exc:
                report.bad(number, str(exc))
                continue
            if len(batch) >= batch_size:
                writer.submit(batch)
                batch = []
        writer.submit(batch)
    return report
