"""The suppression list: erased people whose future events are not stored.

Entries are keyed fingerprints (``keys``) of the user key and of the anonymous ids that were
linked to the person, grouped by the erasure's subject so that lifting it removes them all.
Every ingest path checks it: ``store_events`` (HTTP and ``recs.track``) through ``enforce``,
``import-events`` through ``fingerprints``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, cast

from sqlalchemy import Connection, Table, delete, select

from ..db import insert_ignoring_conflicts, utcnow
from ..models import Event, Identity, Suppression
from .keys import anonymous_fingerprint, user_fingerprint

if TYPE_CHECKING:
    from ..tracking.identity import Visitor

table = cast(Table, Suppression.__table__)


class Suppressions:
    """The suppression list of one app (its secret makes the fingerprints)."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def add(
        self,
        conn: Connection,
        subject: str,
        user_keys: Iterable[str] = (),
        anonymous_ids: Iterable[str] = (),
        now: datetime | None = None,
    ) -> int:
        """Suppress these keys under ``subject``; returns the number of new entries."""
        prints = {user_fingerprint(self.secret, key) for key in user_keys}
        prints |= {anonymous_fingerprint(self.secret, aid) for aid in anonymous_ids}
        if not prints:
            return 0
        created = now or utcnow()
        stmt = insert_ignoring_conflicts(conn.dialect.name, table, ["fingerprint"])
        rows = [{"fingerprint": fp, "subject": subject, "created_at": created} for fp in sorted(prints)]
        return conn.execute(stmt, rows).rowcount or 0

    def lift(self, conn: Connection, subject: str) -> int:
        """Remove every entry filed under ``subject``; returns how many."""
        return conn.execute(delete(table).where(table.c.subject == subject)).rowcount

    def is_subject_suppressed(self, conn: Connection, subject: str) -> bool:
        return conn.execute(select(table.c.fingerprint).where(table.c.subject == subject).limit(1)).first() is not None

    def fingerprints(self, conn: Connection) -> set[str]:
        """Every suppressed fingerprint (the list is small: one or a few per erased person)."""
        return set(conn.scalars(select(table.c.fingerprint)))

    def user_checker(self, conn: Connection) -> Callable[[str], bool]:
        """A fast check of user keys against the list as it is now (for bulk imports)."""
        blocked = self.fingerprints(conn)
        if not blocked:
            return lambda _: False

        @functools.lru_cache(maxsize=65536)
        def is_suppressed(user_key: str) -> bool:
            return user_fingerprint(self.secret, user_key) in blocked

        return is_suppressed

    def enforce(self, conn: Connection, visitor: Visitor) -> bool:
        """True when the visitor is suppressed and nothing may be stored for them.

        When a suppressed user logs in with a new anonymous id, that id is theirs: its link and
        its events (stored before the login) are deleted, and it is suppressed too.
        """
        wanted = {}
        if visitor.user_key:
            wanted[user_fingerprint(self.secret, visitor.user_key)] = "user"
        if visitor.anonymous_id:
            wanted[anonymous_fingerprint(self.secret, visitor.anonymous_id)] = "anonymous"
        if not wanted:
            return False
        rows = conn.execute(select(table.c.fingerprint, table.c.subject).where(table.c.fingerprint.in_(list(wanted))))
        found = {row.fingerprint: row.subject for row in rows}
        if not found:
            return False
        user_subject = next((s for fp, s in found.items() if wanted[fp] == "user"), None)
        if user_subject and visitor.anonymous_id and visitor.user_key:
            self._absorb_anonymous(conn, user_subject, visitor.user_key, visitor.anonymous_id)
        return True

    def _absorb_anonymous(self, conn: Connection, subject: str, user_key: str, anonymous_id: str) -> None:
        identities, events = cast(Table, Identity.__table__), cast(Table, Event.__table__)
        conn.execute(
            delete(identities).where(identities.c.anonymous_id == anonymous_id, identities.c.user_key == user_key)
        )
        conn.execute(
            delete(events).where(
                events.c.anonymous_id == anonymous_id,
                (events.c.user_key == user_key) | events.c.user_key.is_(None),
            )
        )
        self.add(conn, subject, anonymous_ids=[anonymous_id])


