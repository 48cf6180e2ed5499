"""A visitor's recent events, read with one indexed query, and what serving derives from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, bindparam, or_, select

from ..models import Event
from ..tracking.identity import Visitor

RECENT_LIMIT = 200


@dataclass
class VisitorHistory:
    """Recent interactions, newest first, and the sets rules need."""

    events: list[tuple[str, str, datetime]] = field(default_factory=list)  # (item_id, type, ts)
    purchased: set[str] = field(default_factory=set)
    in_cart: set[str] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not self.events

    def viewed(self, limit: int) -> list[str]:
        """Distinct viewed items, most recent first."""
        seen: list[str] = []
        for item_id, kind, _ in self.events:
            if kind == "view" and item_id not in seen:
                seen.append(item_id)
                if len(seen) == limit:
                    break
        return seen

    def newest(self) -> datetime | None:
        return self.events[0][2] if self.events else None


def _recent(who: ColumnElement[bool]) -> Any:
    return (
        select(Event.item_id, Event.type, Event.ts)
        .where(who, Event.item_id.is_not(None))
        .order_by(Event.ts.desc(), Event.id.desc())
        .limit(bindparam("limit"))
    )


# Built once: constructing a statement per request costs more than running it.
BY_USER = _recent(Event.user_key == bindparam("user_key"))
BY_USER_OR_COOKIE = _recent(
    or_(Event.user_key == bindparam("user_key"),
        and_(Event.anonymous_id == bindparam("anonymous_id"), Event.user_key.is_(None)))
)
BY_COOKIE = _recent(Event.anonymous_id == bindparam("anonymous_id"))


def load_history(engine: Engine, visitor: Visitor, limit: int = RECENT_LIMIT) -> VisitorHistory:
    """The visitor's latest events: the user's (incl. linked anonymous ones), else the cookie's."""
    if visitor.user_key:
        stmt = BY_USER_OR_COOKIE if visitor.anonymous_id else BY_USER
    elif visitor.anonymous_id:
        stmt = BY_COOKIE
    else:
        return VisitorHistory()
    params = {"user_key": visitor.user_key, "anonymous_id": visitor.anonymous_id, "limit": limit}
    with engine.connect() as conn:
        events = [(str(row[0]), row[1], row[2]) for row in conn.execute(stmt, params)]
    history = VisitorHistory(events=events)
    # Oldest to newest, so a later removal or purchase clears an earlier add.
    for item_id, kind, _ in reversed(events):
        if kind == "add_to_cart":
            history.in_cart.add(item_id)
        elif kind == "remove_from_cart":
            history.in_cart.discard(item_id)
        elif kind == "purchase":
            history.purchased.add(item_id)
            history.in_cart.discard(item_id)
    return history
