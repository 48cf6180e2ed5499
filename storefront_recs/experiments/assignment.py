"""Sticky, deterministic assignment of visitors to variants.

A new visitor's variant is ``hash(experiment key, identity)`` mapped onto the variants'
percentages (the rest of the traffic is not in the experiment). The choice is stored in
``recs_experiment_assignments``: a visitor assigned while anonymous keeps the variant after
login, because the user key then takes over the anonymous row.
"""

from __future__ import annotations

import hashlib
from typing import Any, cast

from sqlalchemy import Connection, Table, delete, or_, select, update

from ..db import utcnow
from ..models import ExperimentAssignment, Identity
from ..tracking.identity import Visitor
from .definitions import Experiment

BUCKETS = 10_000
OUT = ""  # stored for visitors outside the experiment's traffic, so they stay outside
table = cast(Table, ExperimentAssignment.__table__)


def bucket(experiment_key: str, identity: str) -> int:
    """A stable number in [0, 10000) for this experiment and identity."""
    digest = hashlib.sha256(f"{experiment_key}\x00{identity}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def choose_variant(experiment: Experiment, identity: str) -> str | None:
    """The variant whose share of the buckets ``identity`` falls in, or None (not in the test)."""
    point = bucket(experiment.key, identity)
    edge = 0.0
    for variant in experiment.variants:
        edge += variant.percent * BUCKETS / 100
        if point < edge:
            return variant.name
    return None


def _insert(conn: Connection, values: dict[str, Any]) -> None:
    """Insert, doing nothing when another request stored this visitor's row a moment ago."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).values(**values).on_conflict_do_nothing())


def _stored(conn: Connection, experiment_id: int, visitor: Visitor) -> tuple[Any, Any]:
    """(the user's row, the anonymous id's row) for this experiment, either may be None."""
    conditions = []
    if visitor.user_key:
        conditions.append(table.c.user_key == visitor.user_key)
    if visitor.anonymous_id:
        conditions.append(table.c.anonymous_id == visitor.anonymous_id)
    rows = conn.execute(select(table).where(table.c.experiment_id == experiment_id, or_(*conditions))).all()
    by_user = next((r for r in rows if visitor.user_key and r.user_key == visitor.user_key), None)
    by_anon = next((r for r in rows if visitor.anonymous_id and r.anonymous_id == visitor.anonymous_id), None)
    return by_user, by_anon


def _linked_row(conn: Connection, experiment_id: int, user_key: str) -> Any:
    """A row of an anonymous id linked to this user (assigned before a login on another device)."""
    linked = select(Identity.anonymous_id).where(Identity.user_key == user_key)
    return conn.execute(
        select(table).where(table.c.experiment_id == experiment_id, table.c.user_key.is_(None),
                            table.c.anonymous_id.in_(linked)).order_by(table.c.id).limit(1)
    ).first()


def assign(conn: Connection, experiment: Experiment, visitor: Visitor) -> str | None:
    """The visitor's variant in ``experiment`` (assigning and storing it the first time)."""
    assert experiment.id is not None
    if not visitor.known:
        return None
    by_user, by_anon = _stored(conn, experiment.id, visitor)
    if by_user is not None:
        if by_anon is not None and by_anon.id != by_user.id and by_anon.user_key is None:
            # This browser was assigned before logging in to a user who already had a variant.
            conn.execute(delete(table).where(table.c.id == by_anon.id))
        return by_user.variant or None
    if visitor.user_key:
        anon_row = by_anon if by_anon is not None and by_anon.user_key is None else None
        anon_row = anon_row or _linked_row(conn, experiment.id, visitor.user_key)
        if anon_row is not None:  # login: the user takes over the anonymous assignment
            conn.execute(update(table).where(table.c.id == anon_row.id, table.c.user_key.is_(None))
                         .values(user_key=visitor.user_key))
            by_user, _ = _stored(conn, experiment.id, Visitor(visitor.user_key, None))
            return (by_user.variant or None) if by_user is not None else None
    elif by_anon is not None:
        return by_anon.variant or None
    identity = f"u:{visitor.user_key}" if visitor.user_key else f"a:{visitor.anonymous_id}"
    variant = choose_variant(experiment, identity)
    anonymous_id = visitor.anonymous_id if by_anon is None else None  # a shared browser keeps its row
    _insert(conn, {"experiment_id": experiment.id, "variant": variant or OUT, "user_key": visitor.user_key,
                   "anonymous_id": anonymous_id, "assigned_at": utcnow()})
    by_user, by_anon = _stored(conn, experiment.id, Visitor(visitor.user_key, anonymous_id))
    row = by_user or by_anon
    return (row.variant or None) if row is not None else variant
