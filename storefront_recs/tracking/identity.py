"""Who the visitor is, decided on the server only.

The logged-in user comes from the shop's ``user_loader``; otherwise a random first-party
anonymous id from our own cookie. Ids in request bodies or query strings are never trusted.

The cookie holds the id signed (itsdangerous, salted, keyed by the recs secret): a value the
server did not sign, or signed with a key no longer listed, starts a new anonymous id. Keys
rotate through ``RECS_SECRET_KEY_FALLBACKS`` (or Flask's ``SECRET_KEY_FALLBACKS`` when the
secret is the app's ``SECRET_KEY``): a cookie signed with an old key is still read, and is
signed again with the current key in the same response.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from flask import Request, current_app, g, request
from itsdangerous import BadSignature, Signer
from sqlalchemy import Connection, select, update

from ..db import insert_ignoring_conflicts, utcnow
from ..errors import ValidationError
from ..models import KEY_LENGTH, Event, Identity
from ..safe_input import text_problem

ANON_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
COOKIE_SALT = "storefront-recs.anonymous-id"


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
        return checked_id(str(user_id), "user_id")
    return hmac.new(secret, str(user_id).encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:40]


def checked_id(value: Any, name: str = "anonymous_id") -> str:
    """An id the shop's code passes (an anonymous id, or a user id stored unhashed) as it can be
    stored and looked up: text of 1 to 64 characters without NUL or lone surrogates."""
    if not isinstance(value, str) or not 1 <= len(value) <= KEY_LENGTH or text_problem(value):
        raise ValidationError(f"{name} must be text of 1 to {KEY_LENGTH} characters (no NUL, valid Unicode)",
                              {name: "invalid"})
    return value


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


def _as_bytes(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else bytes(key)


def cookie_keys(secret: bytes, config: Any) -> list[bytes]:
    """Keys that verify the cookie, oldest first; the last one (the current secret) signs."""
    fallbacks = config.get("RECS_SECRET_KEY_FALLBACKS") or []
    if not config.get("RECS_SECRET_KEY") and config.get("SECRET_KEY"):
        fallbacks = [*(config.get("SECRET_KEY_FALLBACKS") or []), *fallbacks]
    return [*(_as_bytes(key) for key in fallbacks), secret]


def _signers() -> tuple[Signer, Signer]:
    """(the current key's signer, one that verifies with every listed key), per app."""
    state = current_app.extensions["storefront_recs"]

    def build() -> tuple[Signer, Signer]:
        keys = cookie_keys(state.secret, current_app.config)
        return Signer(keys[-1], salt=COOKIE_SALT), Signer(keys, salt=COOKIE_SALT)

    return state.component("anonymous_cookie_signers", build)


def anonymous_cookie_value(anonymous_id: str) -> str:
    """The cookie value of an anonymous id: the id, signed with the current key."""
    return _signers()[0].sign(anonymous_id).decode()


def read_anonymous_cookie(value: str | None) -> tuple[str | None, bool]:
    """``(anonymous id, signed with the current key)`` of a cookie value; ``(None, False)``
    for a value that is missing, unsigned, forged or signed with a key no longer listed."""
    if not value:
        return None, False
    current, every = _signers()
    try:
        anonymous_id = every.unsign(value).decode()
    except (BadSignature, UnicodeError):
        return None, False
    if not ANON_ID_PATTERN.match(anonymous_id):
        return None, False
    return anonymous_id, current.validate(value)


def cookie_anonymous_id(req: Request) -> str | None:
    """The anonymous id of the request's cookie, if the server signed it."""
    return read_anonymous_cookie(req.cookies.get(current_app.config["RECS_COOKIE_NAME"]))[0]


def resolve_visitor(user_id: str | None, secret: bytes, hash_ids: bool, may_track: bool) -> Visitor:
    """Resolve the current request's visitor; issue a cookie (after the response) if tracking
    is allowed and none is present (or reuse the one this request already issued). A cookie
    signed with an old key is signed again with the current one."""
    anonymous_id, current = read_anonymous_cookie(request.cookies.get(current_app.config["RECS_COOKIE_NAME"]))
    if anonymous_id is not None and not current and may_track:
        g.recs_set_cookie = anonymous_id
    anonymous_id = anonymous_id or g.get("recs_set_cookie")
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
