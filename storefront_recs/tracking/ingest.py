"""Validate events and store each one exactly once.

Deduplication relies on the unique ``(event_id, line_no)`` constraint with
``ON CONFLICT DO NOTHING``, so two workers receiving the same event at the same moment still
store it once. The ``RETURNING`` clause tells which events were new.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from marshmallow import ValidationError as SchemaError
from sqlalchemy import Connection

from ..db import insert_ignoring_conflicts, utcnow
from ..errors import flatten_errors
from ..models import Event
from ..privacy.suppression import Suppressions
from .identity import Visitor
from .schemas import EventSchema


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


@dataclass(frozen=True)
class Limits:
    max_event_bytes: int
    max_future: timedelta
    max_lines: int

    @classmethod
    def from_config(cls, config: Any) -> Limits:
        return cls(
            max_event_bytes=config["RECS_MAX_EVENT_BYTES"],
            max_future=timedelta(seconds=config["RECS_MAX_FUTURE_SECONDS"]),
            max_lines=config["RECS_MAX_PURCHASE_LINES"],
        )


def validate_events(
    raw_events: Sequence[Any], limits: Limits
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split raw events into loaded valid ones and ``{"index", "reason"}`` rejections."""
    schema = EventSchema(max_future=limits.max_future, max_lines=limits.max_lines)
    valid: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, dict):
            rejected.append({"index": index, "reason": "an event must be a JSON object"})
            continue
        size = len(json.dumps(raw, separators=(",", ":"), default=str).encode())
        if size > limits.max_event_bytes:
            rejected.append(
                {"index": index, "reason": f"event is {size} bytes, over the limit of {limits.max_event_bytes}"}
            )
            continue
        try:
            valid.append(schema.load(raw))
        except SchemaError as exc:
            rejected.append({"index": index, "reason": flatten_errors(exc.messages)})
    return valid, rejected


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
    stmt = insert_ignoring_conflicts(conn.dialect.name, Event.__table__, ["event_id", "line_no"])
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
