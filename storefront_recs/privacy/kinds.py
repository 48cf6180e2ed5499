"""The kinds of personal data that erasure deletes and export returns, as a registry.

Each ``DataKind`` erases (returns a row count for the receipt) and/or exports (returns rows as
JSON-ready dicts) one kind of data for an ``ErasureSubject``. Feature modules that add tables
(stored recommendations, email sends, experiment assignments, ...) either name their columns
``user_key`` / ``anonymous_id`` (then a kind is derived for the table automatically, named after
it without the ``recs_`` prefix) or call ``register_data_kind`` at import time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Connection, MetaData, Table, delete, or_, select, update

from ..models import Event, Identity, metadata

# Keeps IN (...) lists well under SQLite's bound-parameter limit.
CHUNK = 500
# Tables that identify people by fingerprint (by design), not by user key or anonymous id.
FINGERPRINT_TABLES = frozenset({"recs_erasures", "recs_suppressions"})


@dataclass(frozen=True)
class ErasureSubject:
    """Whom to erase or export: every stored form of the user key and their anonymous ids."""

    user_keys: frozenset[str]
    anonymous_ids: frozenset[str]
    fingerprint: str


Eraser = Callable[[Connection, ErasureSubject], int]
Exporter = Callable[[Connection, ErasureSubject], list[dict[str, Any]]]


@dataclass(frozen=True)
class DataKind:
    """One kind of personal data: ``name`` is its key in receipts and exports."""

    name: str
    erase: Eraser | None = None
    export: Exporter | None = None
    tables: tuple[str, ...] = field(default=())


_KINDS: dict[str, DataKind] = {}


def register_data_kind(kind: DataKind, *, replace: bool = False) -> DataKind:
    """Add a kind to erasure and export (run in registration order)."""
    if kind.name in _KINDS and not replace:
        raise ValueError(f"a data kind named {kind.name!r} is already registered")
    _KINDS[kind.name] = kind
    return kind


def unregister_data_kind(name: str) -> None:
    _KINDS.pop(name, None)


def data_kinds(meta: MetaData = metadata) -> list[DataKind]:
    """Registered kinds, then one derived kind per unclaimed table with personal columns."""
    kinds = list(_KINDS.values())
    claimed = {table for kind in kinds for table in kind.tables} | FINGERPRINT_TABLES
    for table in meta.sorted_tables:
        if table.name not in claimed and personal_columns(table):
            kinds.append(table_kind(table))
    return kinds


def personal_columns(table: Table) -> list[str]:
    return [name for name in ("user_key", "anonymous_id") if name in table.c]


def chunks(values: Iterable[str], size: int = CHUNK) -> Iterator[list[str]]:
    items = sorted(values)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def row_dict(row: Any, skip: Sequence[str] = ()) -> dict[str, Any]:
    return {key: _jsonable(value) for key, value in row._mapping.items() if key not in skip}


def _subject_filters(table: Table, subject: ErasureSubject) -> list[Any]:
    """WHERE clauses (one per chunk) selecting the subject's rows of a table."""
    filters: list[Any] = []
    if "user_key" in table.c and subject.user_keys:
        filters.append(table.c.user_key.in_(sorted(subject.user_keys)))
    if "anonymous_id" in table.c:
        filters.extend(table.c.anonymous_id.in_(chunk) for chunk in chunks(subject.anonymous_ids))
    return filters


def table_kind(table: Table, name: str | None = None) -> DataKind:
    """A kind for a table whose rows belong to whoever its user_key / anonymous_id names."""

    def erase(conn: Connection, subject: ErasureSubject) -> int:
        return sum(int(conn.execute(delete(table).where(f)).rowcount) for f in _subject_filters(table, subject))

    def export(conn: Connection, subject: ErasureSubject) -> list[dict[str, Any]]:
        filters = _subject_filters(table, subject)
        if not filters:
            return []
        order = list(table.primary_key.columns)
        rows = conn.execute(select(table).where(or_(*filters)).order_by(*order))
        return [row_dict(row) for row in rows]

    return DataKind(name or table.name.removeprefix("recs_"), erase, export, (table.name,))


# -- built-in kinds: events (three steps) and identity links -------------------------------------
events = cast(Table, Event.__table__)


def erase_user_events(conn: Connection, subject: ErasureSubject) -> int:
    """Events recorded for the user (logged in, imported, tracked by the shop's server)."""
    if not subject.user_keys:
        return 0
    return conn.execute(delete(events).where(events.c.user_key.in_(sorted(subject.user_keys)))).rowcount


def erase_anonymous_events(conn: Connection, subject: ErasureSubject) -> int:
    """Events of the user's anonymous ids that were never stamped with a user."""
    deleted = 0
    for chunk in chunks(subject.anonymous_ids):
        stmt = delete(events).where(events.c.anonymous_id.in_(chunk), events.c.user_key.is_(None))
        deleted += conn.execute(stmt).rowcount
    return deleted


def detach_shared_events(conn: Connection, subject: ErasureSubject) -> int:
    """Other users' events that carry one of the user's anonymous ids (a shared browser):
    the events stay theirs, the anonymous id is removed from them."""
    detached = 0
    for chunk in chunks(subject.anonymous_ids):
        stmt = update(events).where(events.c.anonymous_id.in_(chunk)).values(anonymous_id=None)
        detached += conn.execute(stmt).rowcount
    return detached


def export_events(conn: Connection, subject: ErasureSubject) -> list[dict[str, Any]]:
    """The user's events and their anonymous ids' unstamped events, oldest first."""
    filters: list[ColumnElement[bool]] = []
    if subject.user_keys:
        filters.append(events.c.user_key.in_(sorted(subject.user_keys)))
    for chunk in chunks(subject.anonymous_ids):
        filters.append(events.c.anonymous_id.in_(chunk) & events.c.user_key.is_(None))
    if not filters:
        return []
    rows = conn.execute(select(events).where(or_(*filters)).order_by(events.c.ts, events.c.id))
    return [row_dict(row, skip=("id",)) for row in rows]


def register_builtin_kinds() -> None:
    register_data_kind(DataKind("events", erase_user_events, export_events, ("recs_events",)), replace=True)
    register_data_kind(DataKind("anonymous_events", erase_anonymous_events, None, ("recs_events",)), replace=True)
    register_data_kind(DataKind("detached_events", detach_shared_events, None, ("recs_events",)), replace=True)
    register_data_kind(table_kind(cast(Table, Identity.__table__), "identities"), replace=True)


register_builtin_kinds()


def resolve_subject(conn: Connection, user_keys: Sequence[str], fingerprint: str) -> ErasureSubject:
    """The subject for these user keys: anonymous ids linked to them, plus anonymous ids seen on
    their events that are not linked to somebody else."""
    keys = sorted(set(user_keys))
    identities = cast(Table, Identity.__table__)
    linked = set(conn.scalars(select(identities.c.anonymous_id).where(identities.c.user_key.in_(keys))))
    seen = set(
        conn.scalars(
            select(events.c.anonymous_id)
            .where(events.c.user_key.in_(keys), events.c.anonymous_id.is_not(None))
            .distinct()
        )
    )
    others: set[str] = set()
    for chunk in chunks(seen - linked):
        others.update(
            conn.scalars(
                select(identities.c.anonymous_id).where(
                    identities.c.anonymous_id.in_(chunk), identities.c.user_key.not_in(keys)
                )
            )
        )
    return ErasureSubject(frozenset(keys), frozenset(linked | (seen - others)), fingerprint)
