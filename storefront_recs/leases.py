"""Named leases in ``recs_leases``: one holder at a time across processes and machines.

A lease is taken by inserting its row, or by taking over a row whose ``expires_at`` has
passed (a holder that died). Both are single statements, so two processes racing for the
same lease cannot both win, on SQLite or PostgreSQL. A live holder renews its lease from a
heartbeat thread (:class:`LeaseKeeper`), so a short timeout still covers a long run.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from .db import utcnow
from .models import Lease

TRAINING_LEASE = "training"


def new_holder() -> str:
    """A holder name unique to this process and call: host, pid and a random suffix."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def acquire(engine: Engine, name: str, holder: str, ttl: float) -> bool:
    """Take the lease for ``ttl`` seconds; True when ``holder`` now holds it."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    with engine.begin() as conn:
        taken = conn.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.expires_at < now, Lease.holder == holder))
            .values(holder=holder, acquired_at=now, expires_at=expires)
        ).rowcount
    if taken:
        return True
    try:
        with engine.begin() as conn:
            conn.execute(insert(Lease).values(name=name, holder=holder, acquired_at=now, expires_at=expires))
    except IntegrityError:
        return False  # somebody else holds it (or took it a moment ago)
    return True


def renew(engine: Engine, name: str, holder: str, ttl: float) -> bool:
    """Extend a held lease; False when ``holder`` no longer holds it."""
    with engine.begin() as conn:
        return bool(
            conn.execute(
                update(Lease)
                .where(Lease.name == name, Lease.holder == holder)
                .values(expires_at=utcnow() + timedelta(seconds=ttl))
            ).rowcount
        )


def release(engine: Engine, name: str, holder: str) -> None:
    """Give the lease up (only if still held by ``holder``)."""
    with engine.begin() as conn:
        conn.execute(delete(Lease).where(and_(Lease.name == name, Lease.holder == holder)))


class LeaseKeeper:
    """Renews a held lease every ``ttl / 3`` seconds from a daemon thread until stopped."""

    def __init__(self, engine: Engine, name: str, holder: str, ttl: float) -> None:
        self.engine, self.name, self.holder, self.ttl = engine, name, holder, ttl
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"recs-lease-{name}", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(max(self.ttl / 3.0, 0.05)):
            try:
                if not renew(self.engine, self.name, self.holder, self.ttl):
                    self.lost = True
                    return
            except Exception:  # a database hiccup: try again at the next beat
                continue

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def confirm(self) -> bool:
        """Renew now and say whether this holder still holds the lease (False also when the
        database cannot tell): call it right before doing what only the holder may do."""
        try:
            held = renew(self.engine, self.name, self.holder, self.ttl)
        except Exception:
            held = False
        if not held:
            self.lost = True
        return not self.lost


def expires_at(engine: Engine, name: str) -> datetime | None:
    """When the lease runs out unless renewed (None: nobody holds it)."""
    with engine.connect() as conn:
        return conn.execute(select(Lease.expires_at).where(Lease.name == name)).scalar()


def acquire_after_dead_holder(engine: Engine, name: str, holder: str, ttl: float) -> bool:
    """Take a busy lease once its holder is seen dead: True when taken. A live holder renews
    every ``ttl / 3`` seconds, so a lease whose expiry moves is left to it (False); one that
    stays put is waited out (at most about ``ttl``) and taken."""
    seen = expires_at(engine, name)
    deadline = time.monotonic() + ttl + 1.0
    while time.monotonic() < deadline:
        if acquire(engine, name, holder, ttl):
            return True
        time.sleep(max(ttl / 12, 0.05))
        now = expires_at(engine, name)
        if now is not None and seen is not None and now != seen:
            return False  # renewed (or taken by another live process)
        seen = seen or now
    return False


@contextmanager
def held_lease(engine: Engine, name: str, ttl: float, *, wait_for_dead_holder: bool = False,
               holder: str | None = None) -> Iterator[LeaseKeeper | None]:
    """``with held_lease(engine, "training", 30) as keeper:`` -- None when it is busy. The lease
    is renewed every ``ttl / 3`` seconds; ``keeper.confirm()`` tells whether it is still held.
    ``wait_for_dead_holder``: when busy, wait out a holder that missed its heartbeat."""
    holder = holder or new_holder()
    taken = acquire(engine, name, holder, ttl) or (
        wait_for_dead_holder and acquire_after_dead_holder(engine, name, holder, ttl))
    if not taken:
        yield None
        return
    keeper = LeaseKeeper(engine, name, holder, ttl).start()
    try:
        yield keeper
    finally:
        keeper.stop()
        release(engine, name, holder)


@contextmanager
def held(engine: Engine, name: str, ttl: float, holder: str | None = None) -> Iterator[str | None]:
    """``with held(engine, "training", 300) as holder:`` -- holder is None when it is busy."""
    with held_lease(engine, name, ttl, holder=holder) as keeper:
        yield None if keeper is None else keeper.holder
