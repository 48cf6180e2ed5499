"""Retention: delete events older than ``RECS_RETENTION_DAYS`` (per-type overrides), in batches.

Each batch deletes at most ``batch_size`` rows chosen by an indexed ``LIMIT``ed subselect on
``(type, ts)`` and commits, so the table is never locked for long and ingestion carries on.
The scheduler calls ``purge_expired_events(engine, now, **retention_settings(config))``; tests
pass ``now`` to simulate the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Column,
    ColumnElement,
    DateTime,
    Engine,
    MetaData,
    Table,
    delete,
    exists,
    func,
    select,
)

from .models import Erasure, Event, Identity, metadata
from .privacy.kinds import FINGERPRINT_TABLES, personal_columns
from .tracking.schemas import EVENT_TYPES

OTHER_TYPES = "other"
events = cast(Table, Event.__table__)
identities = cast(Table, Identity.__table__)
erasures = cast(Table, Erasure.__table__)


# Tables purged by their own rules above; other personal tables go by age (see ``aged_tables``).
OWN_RULES = frozenset({"recs_events", "recs_identities"}) | FINGERPRINT_TABLES
_AGE_COLUMNS: dict[str, str | None] = {}


def set_age_column(table_name: str, column: str | None) -> None:
    """Purge ``table_name`` by ``column`` (None: never purge it by age), overriding the default."""
    _AGE_COLUMNS[table_name] = column


def aged_tables(meta: MetaData = metadata) -> list[tuple[Table, Column[Any]]]:
    """Other tables with personal data (a ``user_key`` or ``anonymous_id`` column: email sends,
    experiment assignments, ...) and the time column their rows expire by: the one set with
    ``set_age_column``, else the first non-nullable DateTime column. Single-column keys only."""
    found = []
    for table in meta.sorted_tables:
        if table.name in OWN_RULES or not personal_columns(table) or len(table.primary_key.columns) != 1:
            continue
        if table.name in _AGE_COLUMNS:
            name = _AGE_COLUMNS[table.name]
            column = None if name is None else table.c[name]
        else:
            column = next((c for c in table.c if isinstance(c.type, DateTime) and not c.nullable), None)
        if column is not None:
            found.append((table, column))
    return found


@dataclass
class PurgeReport:
    """Rows deleted (or, on a dry run, that would be) per event type, and linked clean-up."""

    now: datetime
    dry_run: bool
    cutoffs: dict[str, str]
    events: dict[str, int] = field(default_factory=dict)
    identities: int = 0
    erasures: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    batches: int = 0

    @property
    def total_events(self) -> int:
        return sum(self.events.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "dry_run": self.dry_run,
            "cutoffs": self.cutoffs,
            "events": self.events,
            "total_events": self.total_events,
            "identities": self.identities,
            "erasures": self.erasures,
            "tables": self.tables,
            "batches": self.batches,
        }


def retention_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``purge_expired_events`` from an app's config."""
    return {
        "retention_days": int(config["RECS_RETENTION_DAYS"]),
        "days_by_type": {str(k): int(v) for k, v in (config["RECS_RETENTION_DAYS_BY_TYPE"] or {}).items()},
        "batch_size": int(config["RECS_RETENTION_BATCH_SIZE"]),
    }


def _delete_in_batches(engine: Engine, table: Any, key: Any, where: ColumnElement[bool], batch_size: int) -> tuple[int, int]:
    """Delete rows matching ``where``, ``batch_size`` at a time, one transaction each."""
    deleted = batches = 0
    while True:
        chosen = select(key).where(where).limit(batch_size)
        with engine.begin() as conn:
            count = conn.execute(delete(table).where(key.in_(chosen))).rowcount
        batches += 1
        deleted += count
        if count < batch_size:
            return deleted, batches


def _count(engine: Engine, table: Any, where: ColumnElement[bool]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(where)).scalar_one())


def purge_expired_events(
    engine: Engine,
    now: datetime,
    *,
    retention_days: int = 760,
    days_by_type: Mapping[str, int] | None = None,
    batch_size: int = 5000,
    dry_run: bool = False,
    meta: MetaData = metadata,
) -> PurgeReport:
    """Delete events older than their type's limit, then identity links and erasure receipts
    older than the default limit (links only when no event uses their anonymous id any more),
    and rows of other personal tables (``aged_tables``) older than the default limit.

    ``now`` is naive UTC. An event exactly at the limit is kept. Returns counts per type.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    overrides = dict(days_by_type or {})
    default_cutoff = now - timedelta(days=retention_days)
    cutoffs = {t: now - timedelta(days=overrides.get(t, retention_days)) for t in (*EVENT_TYPES, *overrides)}
    groups: dict[str, ColumnElement[bool]] = {
        t: (events.c.type == t) & (events.c.ts < cutoff) for t, cutoff in cutoffs.items()
    }
    groups[OTHER_TYPES] = events.c.type.not_in(list(cutoffs)) & (events.c.ts < default_cutoff)
    linked_expired = (identities.c.linked_at < default_cutoff) & ~exists().where(
        events.c.anonymous_id == identities.c.anonymous_id
    )
    old_receipts = erasures.c.erased_at < default_cutoff
    report = PurgeReport(
        now=now,
        dry_run=dry_run,
        cutoffs={**{t: c.isoformat() for t, c in cutoffs.items()}, OTHER_TYPES: default_cutoff.isoformat()},
    )
    aged = [(table, table.primary_key.columns[0], column < default_cutoff) for table, column in aged_tables(meta)]
    if dry_run:
        report.events = {t: _count(engine, events, where) for t, where in groups.items()}
        report.identities = _count(engine, identities, linked_expired)
        report.erasures = _count(engine, erasures, old_receipts)
        report.tables = {table.name: _count(engine, table, where) for table, _, where in aged}
    else:
        for kind, where in groups.items():
            report.events[kind], batches = _delete_in_batches(engine, events, events.c.id, where, batch_size)
            report.batches += batches
        report.identities, batches = _delete_in_batches(
            engine, identities, identities.c.anonymous_id, linked_expired, batch_size
        )
        report.batches += batches
        report.erasures, batches = _delete_in_batches(engine, erasures, erasures.c.id, old_receipts, batch_size)
        report.batches += batches
        for table, key, where in aged:
            report.tables[table.name], batches = _delete_in_batches(engine, table, key, where, batch_size)
            report.batches += batches
    report.events = {kind: n for kind, n in report.events.items() if n}
    return report
