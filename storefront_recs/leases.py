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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import Engine, and_, delete, insert, or_, update
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


@contextmanager
def held(engine: Engine, name: str, ttl: float, holder: str | None = None) -> Iterator[str | None]:
    """``with held(engine, "training", 300) as holder:`` -- holder is None when it is busy."""
    holder = holder or new_holder()
    if not acquire(engine, name, holder, ttl):
        yield None
        return
    keeper = LeaseKeeper(engine, name, holder, ttl).start()
    try:
        yield holder
    finally:
        keeper.stop()
        release(engine, name, holder)
