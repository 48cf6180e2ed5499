"""A visitor's recent events, read with one indexed query, and what serving derives from them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, and_, bindparam, or_, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler

from ..models import Event
from ..tracking.identity import Visitor

RECENT_LIMIT = 200
Processor = Callable[[Any], Any]


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


class RawQuery:
    """A SELECT compiled once per dialect and run on a pooled DBAPI connection.

    SQLAlchemy's per-execution work (connection wrapper, execution context, result object)
    costs more than this indexed read of a few rows, and it runs on every personal answer.
    Bind values must need no bind processing (strings, integers); the columns' result
    processors (e.g. SQLite's text -> datetime) are applied as SQLAlchemy would.
    """

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt
        self._compiled: dict[tuple[str, str, str], tuple[SQLCompiler, list[Processor | None]]] = {}

    def _compile(self, dialect: Dialect) -> tuple[SQLCompiler, list[Processor | None]]:
        key = (dialect.name, dialect.driver, dialect.paramstyle)
        found = self._compiled.get(key)
        if found is None:
            compiled = self.stmt.compile(dialect=dialect)
            processors: list[Processor | None] = [
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in self.stmt.selected_columns]
            found = self._compiled[key] = (compiled, processors)
        return found

    def rows(self, engine: Engine, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        compiled, processors = self._compile(engine.dialect)
        values = compiled.construct_params(params)
        args = tuple(values[name] for name in compiled.positiontup or ()) if compiled.positional else values
        dbapi_error = engine.dialect.loaded_dbapi.Error
        try:
            connection = engine.raw_connection()
        except dbapi_error as exc:  # raised as engine.connect() would: a SQLAlchemy DBAPIError
            raise DBAPIError.instance(compiled.string, args, exc, dbapi_error) from exc
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(compiled.string, args)
                rows = cursor.fetchall()
            finally:
                cursor.close()
        except dbapi_error as exc:
            lost = engine.dialect.is_disconnect(exc, connection.dbapi_connection, None)
            if lost:  # the server went away: this connection must not go back to the pool
                connection.invalidate(exc)
            raise DBAPIError.instance(compiled.string, args, exc, dbapi_error, connection_invalidated=lost) from exc
        finally:
            connection.close()  # back to the pool, rolled back like any pooled connection
        if any(processors):
            return [tuple(value if process is None else process(value)
                          for process, value in zip(processors, row, strict=True)) for row in rows]
        return [tuple(row) for row in rows]


# Built once: constructing a statement per request costs more than running it.
BY_USER = RawQuery(_recent(Event.user_key == bindparam("user_key")))
BY_USER_OR_COOKIE = RawQuery(_recent(
    or_(Event.user_key == bindparam("user_key"),
        and_(Event.anonymous_id == bindparam("anonymous_id"), Event.user_key.is_(None)))
))
BY_COOKIE = RawQuery(_recent(Event.anonymous_id == bindparam("anonymous_id")))


def load_history(engine: Engine, visitor: Visitor, limit: int = RECENT_LIMIT) -> VisitorHistory:
    """The visitor's latest events: the user's (incl. linked anonymous ones), else the cookie's."""
    if visitor.user_key:
        stmt = BY_USER_OR_COOKIE if visitor.anonymous_id else BY_USER
    elif visitor.anonymous_id:
        stmt = BY_COOKIE
    else:
        return VisitorHistory()
    params = {"user_key": visitor.user_key, "anonymous_id": visitor.anonymous_id, "limit": limit}
    events = [(str(item_id), kind, ts) for item_id, kind, ts in stmt.rows(engine, params)]
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
