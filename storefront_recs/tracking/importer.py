"""``flask recs import-events FILE``: historical events from CSV, idempotent and streamed.

Header ``user_id,item_id,type,timestamp[,quantity,value,event_id]``; the file's timestamps are
kept. A row without ``event_id`` gets one derived from its content and occurrence number, so a
re-import stores nothing twice while genuinely repeated rows are all kept.

Rows are checked by plain code here rather than the marshmallow ``EventSchema``: the rules are
the same (types, lengths, ranges from ``schemas``), but a million rows must import in seconds.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine

from ..importing import ImportReport, counting_lines, require_columns
from ..models import ITEM_ID_LENGTH
from ..privacy.suppression import Suppressions
from .schemas import EVENT_ID_PATTERN, EVENT_TYPES, MAX_QUANTITY, parse_timestamp

REQUIRED_COLUMNS = ("user_id", "item_id", "type", "timestamp")
EVENT_ID_RE = re.compile(EVENT_ID_PATTERN)
TYPES = frozenset(EVENT_TYPES)


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


class EventRowParser:
    """Turns CSV rows into event table rows, deriving stable event ids."""

    def __init__(
        self,
        user_key: Callable[[str], str],
        max_future: timedelta,
        suppressed: Callable[[str], bool] = lambda _: False,
    ) -> None:
        self._user_key = user_key
        self._suppressed = suppressed
        self._user_keys: dict[str, str] = {}
        self._occurrences: Counter[str] = Counter()
        self._latest = datetime.now(UTC).replace(tzinfo=None) + max_future

    def parse(self, record: dict[str, str | None]) -> dict[str, Any]:
        user_id = (record.get("user_id") or "").strip()
        item_id = (record.get("item_id") or "").strip()
        kind = (record.get("type") or "").strip()
        stamp = (record.get("timestamp") or "").strip()
        if not user_id:
            raise RowError("user_id is empty")
        if not item_id or len(item_id) > ITEM_ID_LENGTH:
            raise RowError(f"item_id must be 1 to {ITEM_ID_LENGTH} characters")
        if kind not in TYPES:
            raise RowError(f"unknown type {kind!r}")
        try:
            ts = parse_timestamp(stamp)
        except (ValueError, OverflowError, OSError):
            raise RowError(f"timestamp {stamp!r} is neither ISO-8601 nor unix seconds") from None
        if ts > self._latest:
            raise RowError("timestamp is in the future")
        quantity = self._quantity(record.get("quantity"))
        value = self._value(record.get("value"))
        event_id = (record.get("event_id") or "").strip()
        if event_id:
            if not EVENT_ID_RE.match(event_id):
                raise RowError("event_id must be 8 to 64 characters of A-Z a-z 0-9 _ . : -")
        else:
            content = "\x1f".join((user_id, item_id, kind, stamp, str(quantity), str(value)))
            self._occurrences[content] += 1
            digest = hashlib.sha1(f"{content}\x1e{self._occurrences[content]}".encode()).hexdigest()
            event_id = f"imp-{digest[:40]}"
        user_key = self._user_keys.get(user_id)
        if user_key is None:
            user_key = self._user_keys[user_id] = self._user_key(user_id)
        if self._suppressed(user_key):
            raise SuppressedRow("user was erased and is suppressed")
        return {
            "event_id": event_id,
            "line_no": 0,
            "type": kind,
            "user_key": user_key,
            "anonymous_id": None,
            "item_id": item_id,
            "quantity": quantity,
            "value": value,
            "ts": ts,
            "client_ts": None,
            "source": "import",
            "context": None,
        }

    @staticmethod
    def _quantity(text: str | None) -> int:
        if text is None or not text.strip():
            return 1
        try:
            quantity = int(float(text))
        except ValueError:
            raise RowError(f"quantity {text!r} is not a number") from None
        if not 1 <= quantity <= MAX_QUANTITY:
            raise RowError(f"quantity must be 1 to {MAX_QUANTITY}")
        return quantity

    @staticmethod
    def _value(text: str | None) -> float | None:
        if text is None or not text.strip():
            return None
        try:
            value = float(text)
        except ValueError:
            raise RowError(f"value {text!r} is not a number") from None
        if value != value or value < 0 or value == float("inf"):
            raise RowError("value must be a finite number >= 0")
        return value


COLUMNS = ("event_id", "line_no", "type", "user_key", "anonymous_id", "item_id", "quantity", "value", "ts",
           "client_ts", "source", "context")
SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"  # the text form SQLAlchemy's SQLite DateTime stores


def bulk_insert(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert event rows with the driver's ``executemany``, skipping stored ones; returns how
    many were new. At import volumes SQLAlchemy's per-row parameter processing costs more than
    the database's insert itself, so this one statement goes to the driver directly."""
    if not rows:
        return 0
    sqlite = conn.dialect.name == "sqlite"
    marker = "?" if sqlite else "%s"
    sql = (
        f"INSERT INTO recs_events ({', '.join(COLUMNS)}) VALUES ({', '.join([marker] * len(COLUMNS))}) "
        "ON CONFLICT (event_id, line_no) DO NOTHING"
    )
    if sqlite:
        params = [(*(r[c] for c in COLUMNS[:8]), r["ts"].strftime(SQLITE_DATETIME), None, r["source"], None)
                  for r in rows]
    else:
        params = [tuple(r[c] for c in COLUMNS) for r in rows]
    return int(conn.exec_driver_sql(sql, params).rowcount)


def import_events(
    engine: Engine,
    path: str,
    user_key: Callable[[str], str],
    max_future: timedelta,
    batch_size: int = 50_000,
    on_progress: Callable[[int], None] = lambda _: None,
    suppressions: Suppressions | None = None,
) -> EventImportReport:
    """Import a CSV file of events; rows of suppressed (erased) users are skipped and counted.

    ``suppressions`` defaults to the current app's list (the list is read once, at the start).
    """
    report = EventImportReport()
    suppressions = suppressions or Suppressions.for_current_app()
    suppressed: Callable[[str], bool] = lambda _: False  # noqa: E731
    if suppressions is not None:
        with engine.connect() as conn:
            suppressed = suppressions.user_checker(conn)
    parser = EventRowParser(user_key, max_future, suppressed)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        require_columns(path, handle, REQUIRED_COLUMNS)
        reader = csv.DictReader(counting_lines(handle, on_progress))
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            with engine.begin() as conn:
                stored = bulk_insert(conn, batch)
            report.stored += stored
            report.duplicates += len(batch) - stored
            batch.clear()

        for record in reader:
            report.read += 1
            if None in record:
                report.bad(reader.line_num, "more cells than header columns")
                continue
            try:
                batch.append(parser.parse(record))
            except SuppressedRow:
                report.suppressed += 1
                continue
            except RowError as exc:
                report.bad(reader.line_num, str(exc))
                continue
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    return report
