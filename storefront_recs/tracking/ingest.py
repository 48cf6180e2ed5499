"""Validate events and store each one exactly once.

Deduplication relies on the unique ``(event_id, line_no, origin)`` constraint (event ids are
unique per origin: a browser's or the shop's, see ``origin``) with
``ON CONFLICT DO NOTHING``, so two workers receiving the same event at the same moment still
store it once. The ``RETURNING`` clause tells which events were new.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from marshmallow import ValidationError as SchemaError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import InterfaceError, OperationalError, StatementError

from ..config import from_settings, setting
from ..db import insert_ignoring_conflicts, utcnow
from ..errors import flatten_errors
from ..models import Event
from ..privacy.suppression import Suppressions
from ..safe_input import json_depth, text_problem
from .identity import Visitor
from .origin import origin_of
from .schemas import EventSchema


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def _seconds(value: Any) -> timedelta:
    return timedelta(seconds=float(value))


@dataclass(frozen=True)
class Limits:
    max_event_bytes: int = setting("RECS_MAX_EVENT_BYTES")
    max_future: timedelta = setting("RECS_MAX_FUTURE_SECONDS", _seconds)
    max_lines: int = setting("RECS_MAX_PURCHASE_LINES")
    max_quantity: int = setting("RECS_MAX_QUANTITY")
    max_price: float = setting("RECS_MAX_PRICE", float)
    max_value: float = setting("RECS_MAX_VALUE", float)
    max_json_depth: int = setting("RECS_MAX_JSON_DEPTH")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Limits:
        return from_settings(cls, config)

    def schema(self) -> EventSchema:
        return EventSchema(max_future=self.max_future, max_lines=self.max_lines, max_quantity=self.max_quantity,
                           max_price=self.max_price, max_value=self.max_value)


def check_events(raw_events: Sequence[Any], limits: Limits) -> tuple[list[tuple[int, dict[str, Any]]],
                                                                     list[dict[str, Any]]]:
    """Give each raw event a verdict: ``(index, loaded event)`` when valid, else an
    ``{"index", "reason"}`` rejection. One bad event never affects another."""
    schema = limits.schema()
    valid: list[tuple[int, dict[str, Any]]] = []
    rejected: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_events):
        reason = _problem(raw, limits)
        if reason is None:
            try:
                valid.append((index, schema.load(raw)))
                continue
            except SchemaError as exc:
                reason = flatten_errors(exc.messages)
        rejected.append({"index": index, "reason": reason})
    return valid, rejected


def _problem(raw: Any, limits: Limits) -> str | None:
    """Why ``raw`` cannot even be looked at by the schema, or None."""
    if not isinstance(raw, dict):
        return "an event must be a JSON object"
    try:
        text = json.dumps(raw, separators=(",", ":"), default=str)
    except RecursionError:  # only a Python caller can build such a value
        text = "[" * (limits.max_json_depth + 1)
    except (TypeError, ValueError):  # keys that JSON cannot hold, say (a Python caller again)
        return "an event must hold only JSON values"
    if json_depth(text, limits.max_json_depth) > limits.max_json_depth:
        return f"event is nested deeper than {limits.max_json_depth} levels"
    size = len(text.encode())
    if size > limits.max_event_bytes:
        return f"event is {size} bytes, over the limit of {limits.max_event_bytes}"
    return text_problem(raw)


def validate_events(
    raw_events: Sequence[Any], limits: Limits
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split raw events into loaded valid ones and ``{"index", "reason"}`` rejections."""
    valid, rejected = check_events(raw_events, limits)
    return [event for _, event in valid], rejected


def event_rows(
    event: dict[str, Any], visitor: Visitor, source: str, received_at: datetime, ts: datetime | None = None
) -> list[dict[str, Any]]:
    """The table rows of one validated event (one per line item for a purchase)."""
    base = {
        "event_id": event["event_id"],
        "type": event["type"],
        "user_key": visitor.user_key,
        "anonymous_id": visitor.anonymous_id,
        "ts": ts or received_at,
        "client_ts": event.get("ts"),
        "source": source,
        "origin": origin_of(source),
        "context": event.get("context") or None,
    }
    lines = event.get("items")
    if not lines:
        return [{**base, "line_no": 0, "item_id": event.get("item_id"),
                 "quantity": event.get("quantity", 1), "value": event.get("value")}]
    rows = []
    for line_no, line in enumerate(lines):
        price = line.get("price")
        rows.append({**base, "line_no": line_no, "item_id": line["item_id"], "quantity": line["quantity"],
                     "value": None if price is None else round(price * line["quantity"], 4)})
    return rows


def store_rows(conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert rows, skipping any already stored; returns the event ids that were new."""
    if not rows:
        return set()
    stmt = insert_ignoring_conflicts(conn.dialect.name, Event.__table__, ["event_id", "line_no", "origin"])
    result = conn.execute(stmt.returning(Event.__table__.c.event_id), rows)
    return {row[0] for row in result}


def store_events(
    conn: Connection,
    events: Iterable[dict[str, Any]],
    visitor: Visitor,
    source: str,
    use_client_ts: bool = False,
    suppressions: Suppressions | None = None,
) -> tuple[int, int]:
    """Store validated events for one visitor; returns ``(accepted, duplicates)``.

    The server's receive time is the event time unless ``use_client_ts`` (trusted server-side
    callers and imports only). Nothing is stored for a visitor on the suppression list (erased
    users): their events count as duplicates, so that no client sends them again.
    ``suppressions``: the app's suppression list (None: nothing is suppressed).
    """
    events = list(events)
    if suppressions is not None and suppressions.enforce(conn, visitor):
        return 0, len(events)
    now = utcnow()
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    duplicates = 0
    for event in events:
        if event["event_id"] in seen:
            duplicates += 1
            continue
        seen.add(event["event_id"])
        rows.extend(event_rows(event, visitor, source, now, event.get("ts") if use_client_ts else None))
    new_ids = store_rows(conn, rows)
    return len(new_ids), duplicates + len(seen) - len(new_ids)


def _refused_by_database(exc: StatementError) -> bool:
    """True when the database refused these rows (bad data), False when it is unreachable or
    failing: then the error goes up (nothing is stored and the client retries)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return False
    return not getattr(exc, "connection_invalidated", False)


def store_batch(
    engine: Engine,
    events: Sequence[tuple[int, dict[str, Any]]],
    visitor: Visitor,
    source: str,
    prepare: Callable[[Connection], object] = lambda _conn: None,
    suppressions: Suppressions | None = None,
) -> IngestResult:
    """Store a checked batch (``(index, event)`` pairs) in one transaction; ``suppressions``
    as for :func:`store_events`.

    Should the database still refuse a row, the batch is rolled back and each event is
    stored in a transaction of its own: the refused ones are reported by index, the others
    are kept. ``prepare(conn)`` runs first in each transaction (e.g. linking an identity).
    """
    try:
        with engine.begin() as conn:
            prepare(conn)
            accepted, duplicates = store_events(conn, [event for _, event in events], visitor, source,
                                                suppressions=suppressions)
        return IngestResult(accepted=accepted, duplicates=duplicates)
    except StatementError as exc:
        if not _refused_by_database(exc):
            raise
    result = IngestResult()
    seen: set[str] = set()
    for index, event in events:
        if event["event_id"] in seen:
            result.duplicates += 1
            continue
        seen.add(event["event_id"])
        try:
            with engine.begin() as conn:
                prepare(conn)
                accepted, duplicates = store_events(conn, [event], visitor, source, suppressions=suppressions)
        except StatementError as exc:
            if not _refused_by_database(exc):
                raise
            result.rejected.append({"index": index, "reason": _refusal(exc)})
            continue
        result.accepted += accepted
        result.duplicates += duplicates
    return result


def _refusal(exc: StatementError) -> str:
    return f"the database refused this event ({type(exc.orig or exc).__name__})"
