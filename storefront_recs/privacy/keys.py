"""Keyed fingerprints: how erasure records and the suppression list name a person.

A fingerprint is an HMAC of the stored user key (or anonymous id) under the app's secret, with
a purpose prefix, so it differs from the user key kept in other tables, names nobody in a
database copy, and is the same in every worker.
"""

from __future__ import annotations

import hashlib
import hmac

FINGERPRINT_LENGTH = 40


def fingerprint(secret: bytes, purpose: str, key: str) -> str:
    """HMAC-SHA256 of ``purpose:key`` as 40 hex characters."""
    message = f"recs-{purpose}:{key}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:FINGERPRINT_LENGTH]


def user_fingerprint(secret: bytes, user_key: str) -> str:
    """The fingerprint of a stored user key (as in ``recs_events.user_key``)."""
    return fingerprint(secret, "user", user_key)


def anonymous_fingerprint(secret: bytes, anonymous_id: str) -> str:
    """The fingerprint of an anonymous id (the ``recs_aid`` cookie value)."""
    return fingerprint(secret, "anonymous", anonymous_id)
