"""Erasure: delete everything about a person at once, keep a receipt, tell serving.

``erase`` runs every ``DataKind`` eraser in one transaction, files the suppression entries and
writes a ``recs_erasures`` row (the receipt, keyed by a fingerprint, never the user id). A
second, short transaction sweeps up events that a concurrent request committed meanwhile.

Serving masks the person's factors until the next training run: in the worker that erased
them through ``add_erasure_listener`` (called with the user key, at once), in every other
worker through ``erased_fingerprints`` / ``ErasureMask`` over ``recs_erasures``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypedDict, cast

from sqlalchemy import Connection, Engine, Table, insert, select, update

from ..db import utcnow
from ..models import Erasure
from .keys import anonymous_fingerprint, user_fingerprint
from .kinds import DataKind, ErasureSubject, data_kinds, resolve_subject
from .suppression import Suppressions

erasures = cast(Table, Erasure.__table__)


class ErasureReceipt(TypedDict):
    """What ``forget_user`` returns: JSON-ready, naming the person only by fingerprint."""

    user: str
    deleted: dict[str, int]
    suppressed: bool
    erased_at: str


ErasureListener = Callable[[str, ErasureReceipt], None]
_LISTENERS: list[ErasureListener] = []


def add_erasure_listener(listener: ErasureListener) -> ErasureListener:
    """Call ``listener(user_key, receipt)`` in this process after each erasure commits."""
    _LISTENERS.append(listener)
    return listener


def remove_erasure_listener(listener: ErasureListener) -> None:
    if listener in _LISTENERS:
        _LISTENERS.remove(listener)


def run_erasers(conn: Connection, subject: ErasureSubject, kinds: Sequence[DataKind]) -> dict[str, int]:
    return {kind.name: kind.erase(conn, subject) for kind in kinds if kind.erase is not None}


def erase(
    engine: Engine,
    secret: bytes,
    user_keys: Sequence[str],
    *,
    suppress: bool,
    now: datetime | None = None,
) -> ErasureReceipt:
    """Erase the person stored under ``user_keys`` (the first is the current form)."""
    subject_print = user_fingerprint(secret, user_keys[0])
    receipt = _erase(
        engine, secret, lambda conn: resolve_subject(conn, user_keys, subject_print), suppress, now
    )
    for listener in list(_LISTENERS):
        listener(user_keys[0], receipt)
    return receipt


def erase_anonymous(
    engine: Engine, secret: bytes, anonymous_id: str, *, suppress: bool, now: datetime | None = None
) -> ErasureReceipt:
    """Erase one browser's anonymous history (e.g. when its visitor withdraws consent).

    Events of a user who logged in on it stay theirs, without the anonymous id.
    """
    subject = ErasureSubject(frozenset(), frozenset({anonymous_id}), anonymous_fingerprint(secret, anonymous_id))
    return _erase(engine, secret, lambda _: subject, suppress, now)


def _erase(
    engine: Engine,
    secret: bytes,
    resolve: Callable[[Connection], ErasureSubject],
    suppress: bool,
    now: datetime | None,
) -> ErasureReceipt:
    erased_at = now or utcnow()
    kinds = data_kinds()
    with engine.begin() as conn:
        subject = resolve(conn)
        deleted = run_erasers(conn, subject, kinds)
        if suppress:
            Suppressions(secret).add(conn, subject.fingerprint, subject.user_keys, subject.anonymous_ids, erased_at)
        erasure_id = conn.execute(
            insert(erasures)
            .values(subject=subject.fingerprint, erased_at=erased_at, counts=deleted, suppressed=suppress)
            .returning(erasures.c.id)
        ).scalar_one()
    with engine.begin() as conn:  # events committed by a concurrent request during the erasure
        late = run_erasers(conn, subject, kinds)
        if any(late.values()):
            deleted = {name: deleted[name] + late[name] for name in deleted}
            conn.execute(update(erasures).where(erasures.c.id == erasure_id).values(counts=deleted))
    return ErasureReceipt(
        user=subject.fingerprint, deleted=deleted, suppressed=suppress, erased_at=erased_at.isoformat()
    )


def erased_fingerprints(engine: Engine | Connection, since: datetime | None = None) -> set[str]:
    """Fingerprints (``user_fingerprint``) of users erased at or after ``since`` (all if None).

    Serving passes the time its model's training data was read: users erased later are still
    in the model and must be masked; users erased earlier are not in it.
    """
    stmt = select(erasures.c.subject).distinct()
    if since is not None:
        stmt = stmt.where(erasures.c.erased_at >= since)
    if isinstance(engine, Connection):
        return set(engine.scalars(stmt))
    with engine.connect() as conn:
        return set(conn.scalars(stmt))


def erasure_records(conn: Connection, subject: str) -> list[dict[str, object]]:
    """The erasure receipts filed for a fingerprint, oldest first."""
    rows = conn.execute(
        select(erasures.c.erased_at, erasures.c.counts, erasures.c.suppressed)
        .where(erasures.c.subject == subject)
        .order_by(erasures.c.id)
    )
    return [
        {"erased_at": row.erased_at.isoformat(), "deleted": row.counts, "suppressed": row.suppressed}
        for row in rows
    ]


class ErasureMask:
    """The set serving checks before using a user's factors: ``user_key in mask``.

    ``refresh(engine)`` reloads from ``recs_erasures`` (cheap, indexed); ``maybe_refresh`` does
    so at most every ``every`` seconds (call it per request); ``mark(user_key)`` masks at once
    from an erasure listener. ``since``: when the serving model's training read its events.
    """

    def __init__(self, secret: bytes, since: datetime | None = None) -> None:
        self.secret = secret
        self.since = since
        self._fingerprints: set[str] = set()
        self._loaded_at: float | None = None

    def refresh(self, engine: Engine | Connection, since: datetime | None = None) -> None:
        if since is not None:
            self.since = since
        self._fingerprints = erased_fingerprints(engine, self.since)
        self._loaded_at = time.monotonic()

    def maybe_refresh(self, engine: Engine | Connection, every: float = 1.0) -> None:
        if self._loaded_at is None or time.monotonic() - self._loaded_at >= every:
            self.refresh(engine)

    def __contains__(self, user_key: object) -> bool:
        return isinstance(user_key, str) and self.is_erased(user_key)

    def mark(self, user_key: str) -> None:
        self._fingerprints = self._fingerprints | {user_fingerprint(self.secret, user_key)}

    def is_erased(self, user_key: str) -> bool:
        return user_fingerprint(self.secret, user_key) in self._fingerprints

    def __len__(self) -> int:
        return len(self._fingerprints)
