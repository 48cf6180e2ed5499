"""The email rules that need the database: what each person bought recently, what they were
already sent in this campaign, and recording what is sent now. Batched: one query per rule for
a whole chunk of people (the batch export's speed comes from here)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, insert, select

from ..models import EmailSend, Event

sends = cast(Table, EmailSend.__table__)
events = cast(Table, Event.__table__)
CHUNK = 500


def _chunks(values: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])


def bought_since(conn: Connection, user_keys: Sequence[str], since: datetime) -> dict[str, set[str]]:
    """Items each user bought at or after ``since`` (index: user_key, ts)."""
    found: dict[str, set[str]] = {}
    for chunk in _chunks(sorted(set(user_keys))):
        stmt = select(events.c.user_key, events.c.item_id).where(
            events.c.user_key.in_(chunk), events.c.ts >= since, events.c.type == "purchase",
            events.c.item_id.is_not(None),
        )
        for user_key, item_id in conn.execute(stmt):
            found.setdefault(user_key, set()).add(item_id)
    return found


def sent_since(conn: Connection, user_keys: Sequence[str], campaign: str, since: datetime) -> dict[str, set[str]]:
    """Items each user was sent in ``campaign`` at or after ``since`` (index: user_key,
    campaign, sent_at)."""
    found: dict[str, set[str]] = {}
    for chunk in _chunks(sorted(set(user_keys))):
        stmt = select(sends.c.user_key, sends.c.item_id).where(
            sends.c.user_key.in_(chunk), sends.c.campaign == campaign, sends.c.sent_at >= since
        )
        for user_key, item_id in conn.execute(stmt):
            found.setdefault(user_key, set()).add(item_id)
    return found


def record_sends(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Store sent items (``user_key, campaign, item_id, position, sent_at``)."""
    if rows:
        conn.execute(insert(sends), rows)
    return len(rows)
