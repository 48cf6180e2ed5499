"""Erasure: delete everything about a person at once, keep a receipt, tell serving.

``erase`` runs every ``DataKind`` eraser in one transaction, files the suppression entries and
writes a ``recs_erasures`` row (the receipt, keyed by a fingerprint, never the user id). A
second, short transaction sweeps up events that a concurrent request committed meanwhile.

Serving masks the person's model rows until the next training run: in the worker that erased
them at once (live masks are marked, ``add_erasure_listener`` callbacks called with
the user key), in every other worker from ``recs_erasures`` (``erased_fingerprints``, read by
``ErasureMask.refresh``; ``masking.erased_user_keys_reader`` puts it together).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast

from sqlalchemy import Connection, Engine, Table, insert, select, update

from ..db import utcnow
from ..models import Erasure
from .keys import anonymous_fingerprint, user_fingerprint
from .kinds import DataKind, ErasureSubject, data_kinds, resolve_subject
from .suppression import Suppressions

erasures = cast(Table, Erasure.__table__)
# How the model names an anonymous visitor in its user vocabulary (as ``engine.data``).
ANON_PREFIX = "anon:"


class ErasureReceipt(TypedDict):
    """What ``forget_user`` returns: JSON-ready, naming the person only by fingerprint.

    ``model_bundles`` (when the caller erases model files too): how many bundles on disk were
    checked, the versions rewritten without the person, and any that could not be rewritten.
    """

    user: str
    deleted: dict[str, int]
    suppressed: bool
    erased_at: str
    model_bundles: NotRequired[dict[str, Any]]


ErasureListener = Callable[[str, ErasureReceipt], None]
# Erases the given model keys (user keys, ``anon:<id>``) from the model files on disk.
ModelFilesEraser = Callable[[list[str]], dict[str, Any]]
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
    model_files: ModelFilesEraser | None = None,
) -> ErasureReceipt:
    """Erase the person stored under ``user_keys`` (the first is the current form);
    ``model_files`` also erases them from the model bundles on disk."""
    subject_print = user_fingerprint(secret, user_keys[0])
    receipt, subject = _erase(
        engine, secret, lambda conn: resolve_subject(conn, user_keys, subject_print), suppress, now
    )
    for mask in list(_LIVE_MASKS):
        mask.mark_erased(user_keys[0], receipt, subject.anonymous_ids)
    if model_files is not None:
        receipt["model_bundles"] = model_files(
            [*user_keys, *(ANON_PREFIX + aid for aid in sorted(subject.anonymous_ids))])
    for listener in list(_LISTENERS):
        listener(user_keys[0], receipt)
    return receipt


def erase_anonymous(
    engine: Engine, secret: bytes, anonymous_id: str, *, suppress: bool, now: datetime | None = None,
    model_files: ModelFilesEraser | None = None,
) -> ErasureReceipt:
    """Erase one browser's anonymous history (e.g. when its visitor withdraws consent).

    Events of a user who logged in on it stay theirs, without the anonymous id.
    """
    subject = ErasureSubject(frozenset(), frozenset({anonymous_id}), anonymous_fingerprint(secret, anonymous_id))
    receipt, _ = _erase(engine, secret, lambda _: subject, suppress, now)
    for mask in list(_LIVE_MASKS):
        mask.mark_erased(ANON_PREFIX + anonymous_id, receipt)
    if model_files is not None:
        receipt["model_bundles"] = model_files([ANON_PREFIX + anonymous_id])
    return receipt


def _erase(
    engine: Engine,
    secret: bytes,
    resolve: Callable[[Connection], ErasureSubject],
    suppress: bool,
    now: datetime | None,
) -> tuple[ErasureReceipt, ErasureSubject]:
    erased_at = now or utcnow()
    kinds = data_kinds()
    with engine.begin() as conn:
        subject = resolve(conn)
        deleted = run_erasers(conn, subject, kinds)
        if suppress:
            Suppressions(secret).add(conn, subject.fingerprint, subject.user_keys, subject.anonymous_ids, erased_at)
        anonymous_prints = sorted(anonymous_fingerprint(secret, aid) for aid in subject.anonymous_ids)
        erasure_id = conn.execute(
            insert(erasures)
            .values(
                subject=subject.fingerprint,
                erased_at=erased_at,
                counts=deleted,
                suppressed=suppress,
                anonymous_subjects=anonymous_prints,
            )
            .returning(erasures.c.id)
        ).scalar_one()
    with engine.begin() as conn:  # events committed by a concurrent request during the erasure
        late = run_erasers(conn, subject, kinds)
        if any(late.values()):
            deleted = {name: deleted[name] + late[name] for name in deleted}
            conn.execute(update(erasures).where(erasures.c.id == erasure_id).values(counts=deleted))
    receipt = ErasureReceipt(
        user=subject.fingerprint, deleted=deleted, suppressed=suppress, erased_at=erased_at.isoformat()
    )
    return receipt, subject


def erased_fingerprints(engine: Engine | Connection, since: datetime | None = None) -> set[str]:
    """Fingerprints of users (``user_fingerprint``) and anonymous ids (``anonymous_fingerprint``)
    erased at or after ``since`` (all if None).

    Serving passes the time its model's training started reading events: people erased later
    may still be in the model and must be masked; people erased earlier are not in it.
    """
    stmt = select(erasures.c.subject, erasures.c.anonymous_subjects)
    if since is not None:
        stmt = stmt.where(erasures.c.erased_at >= since)
    if isinstance(engine, Connection):
        rows = engine.execute(stmt).all()
    else:
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
    return {row.subject for row in rows} | {fp for row in rows for fp in row.anonymous_subjects or ()}


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


_LIVE_MASKS: weakref.WeakSet[ErasureMask] = weakref.WeakSet()


class ErasureMask:
    """The set serving checks before using a model row: ``user_key in mask``.

    Keys are as in the model's user vocabulary: a user key, or ``anon:<anonymous id>``.
    ``refresh(engine)`` reloads from ``recs_erasures`` (cheap, indexed); ``maybe_refresh`` does
    so at most every ``every`` seconds (call it per request). With ``live=True`` an erasure made
    in this process marks the mask at once, before any refresh. ``since``: see
    ``erased_fingerprints``.
    """

    def __init__(self, secret: bytes, since: datetime | None = None, *, live: bool = False) -> None:
        self.secret = secret
        self.since = since
        self._fingerprints: frozenset[str] = frozenset()
        self._loaded_at: float | None = None
        if live:
            _LIVE_MASKS.add(self)

    def refresh(self, engine: Engine | Connection, since: datetime | None = None) -> None:
        if since is not None:
            self.since = since
        self._fingerprints = frozenset(erased_fingerprints(engine, self.since))
        self._loaded_at = time.monotonic()

    def due(self, every: float) -> bool:
        """True when the last refresh is ``every`` seconds old (or there was none)."""
        return self._loaded_at is None or time.monotonic() - self._loaded_at >= every

    def maybe_refresh(self, engine: Engine | Connection, every: float = 1.0) -> None:
        if self.due(every):
            self.refresh(engine)

    def mark(self, user_key: str) -> None:
        """Mask a user key now (a model key: ``anon:<id>`` masks an anonymous id)."""
        self._fingerprints = self._fingerprints | {self._fingerprint(user_key)}

    def mark_erased(self, key: str, receipt: ErasureReceipt, anonymous_ids: Iterable[str] = ()) -> None:
        """Mask the subject of a receipt (and its anonymous ids), if the receipt was made with
        this mask's secret (the same app)."""
        if self._fingerprint(key) == receipt["user"]:
            for model_key in (key, *(ANON_PREFIX + aid for aid in anonymous_ids)):
                self.mark(model_key)

    def is_erased(self, user_key: str) -> bool:
        return self._fingerprint(user_key) in self._fingerprints

    def _fingerprint(self, key: str) -> str:
        if key.startswith(ANON_PREFIX):
            return anonymous_fingerprint(self.secret, key[len(ANON_PREFIX) :])
        return user_fingerprint(self.secret, key)

    def __contains__(self, user_key: object) -> bool:
        return isinstance(user_key, str) and self.is_erased(user_key)

    def __len__(self) -> int:
        return len(self._fingerprints)
