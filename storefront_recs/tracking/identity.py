"""Who the visitor is, decided on the server only.

The logged-in user comes from the shop's ``user_loader``; otherwise a random first-party
anonymous id from our own cookie. Ids in request bodies or query strings are never trusted.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from flask import Request, current_app, g, request
from sqlalchemy import Connection, select, update

from ..db import insert_ignoring_conflicts, utcnow
from ..models import Event, Identity

ANON_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass(frozen=True)
class Visitor:
    """The resolved identity of a request: a user key, an anonymous id, or both."""

    user_key: str | None
    anonymous_id: str | None

    @property
    def known(self) -> bool:
        return bool(self.user_key or self.anonymous_id)


def hash_user_id(secret: bytes, user_id: str, enabled: bool = True) -> str:
    """The stored form of a shop user id: a keyed hash, so a database copy names nobody."""
    if not enabled:
        return str(user_id)
    return hmac.new(secret, str(user_id).encode(), hashlib.sha256).hexdigest()[:40]


def new_anonymous_id() -> str:
    return secrets.token_urlsafe(18)


def tracking_refused(req: Request) -> str | None:
    """Why this request may not be tracked ('dnt', 'gpc', 'consent'), or None if it may."""
    config = current_app.config
    if config["RECS_RESPECT_DNT"]:
        if req.headers.get("Sec-GPC", "").strip() == "1":
            return "gpc"
        if req.headers.get("DNT", "").strip() == "1":
            return "dnt"
    if config["RECS_REQUIRE_CONSENT"] and req.cookies.get(config["RECS_CONSENT_COOKIE"]) != "1":
        return "consent"
    return None


def cookie_anonymous_id(req: Request) -> str | None:
    value = req.cookies.get(current_app.config["RECS_COOKIE_NAME"])
    if value and ANON_ID_PATTERN.match(value):
        return value
    return None


def resolve_visitor(user_id: str | None, secret: bytes, hash_ids: bool, may_track: bool) -> Visitor:
    """Resolve the current request's visitor; issue a cookie (after the response) if tracking
    is allowed and none is present (or reuse the one this request already issued)."""
    anonymous_id = cookie_anonymous_id(request) or g.get("recs_set_cookie")
    if anonymous_id is None and may_track:
        anonymous_id = new_anonymous_id()
        g.recs_set_cookie = anonymous_id
    user_key = hash_user_id(secret, user_id, hash_ids) if user_id is not None else None
    return Visitor(user_key=user_key, anonymous_id=anonymous_id)


def link_anonymous(conn: Connection, visitor: Visitor) -> bool:
    """Link the anonymous id to the logged-in user once, and let its history count for them.

    Returns True when a new link was made. The anonymous events are stamped with the user key,
    so training and serving read one column.
    """
    if not (visitor.user_key and visitor.anonymous_id):
        return False
    linked = conn.execute(
        select(Identity.anonymous_id).where(Identity.anonymous_id == visitor.anonymous_id)
    ).first()
    if linked is not None:
        return False
    stmt = insert_ignoring_conflicts(conn.dialect.name, Identity.__table__, ["anonymous_id"])
    inserted = conn.execute(
        stmt.values(anonymous_id=visitor.anonymous_id, user_key=visitor.user_key, linked_at=utcnow())
    ).rowcount
    if not inserted:  # another request linked it a moment ago
        return False
    conn.execute(
        update(Event)
        .where(Event.anonymous_id == visitor.anonymous_id, Event.user_key.is_(None))
        .values(user_key=visitor.user_key)
    )
    return True
