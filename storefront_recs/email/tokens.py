"""Signed click tokens: who (sealed user key), which item, which campaign, which position.

A token is readable by whoever sees the link, so the user key inside it is encrypted
(HMAC-SHA256 in counter mode, keyed by the app secret) and the whole token is signed
(HMAC-SHA256, 128 bits kept); the target URL is never in it. The issue time is inside the signed payload, so
an expired token is told apart from a tampered one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

SALT = b"storefront-recs.email-click"
NONCE_BYTES = 12
SIGNATURE_BYTES = 16


class TokenError(Exception):
    """An unusable token; ``reason`` is 'invalid' (tampered or malformed) or 'expired'."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ClickToken:
    user_key: str
    item_id: str
    campaign: str
    position: int
    issued_at: int  # unix seconds


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (hmac.new(key, nonce + counter.to_bytes(4, "big"), hashlib.sha256).digest()
              for counter in range(length // 32 + 1))
    return b"".join(blocks)[:length]


class ClickTokens:
    """Makes and reads the tokens of one app (its secret)."""

    def __init__(self, secret: bytes) -> None:
        self._sign = hmac.new(hmac.new(secret, SALT, hashlib.sha256).digest(), digestmod=hashlib.sha256)
        self._seal_key = hmac.new(secret, b"storefront-recs.email-seal", hashlib.sha256).digest()

    def seal(self, user_key: str) -> str:
        """The user key encrypted; the same key always seals to the same text (a deterministic
        nonce), which tells no more than the stored user key does."""
        data = user_key.encode()
        nonce = hmac.new(self._seal_key, b"nonce:" + data, hashlib.sha256).digest()[:NONCE_BYTES]
        sealed = bytes(a ^ b for a, b in zip(data, _keystream(self._seal_key, nonce, len(data)), strict=True))
        return _b64(nonce + sealed).decode()

    def unseal(self, text: str) -> str:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        return bytes(a ^ b for a, b in zip(sealed, _keystream(self._seal_key, nonce, len(sealed)),
                                           strict=True)).decode()

    def _signature(self, body: bytes) -> bytes:
        mac = self._sign.copy()
        mac.update(body)
        return _b64(mac.digest()[:SIGNATURE_BYTES])

    def dumps(self, token: ClickToken, sealed: str | None = None) -> str:
        """``<base64 JSON>.<signature>``; pass ``sealed`` (``seal(user_key)``) to save its cost."""
        payload = [sealed or self.seal(token.user_key), token.item_id, token.campaign, token.position,
                   token.issued_at]
        body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
        return (body + b"." + self._signature(body)).decode()

    def make(self, user_key: str, item_id: str, campaign: str, position: int, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        return self.dumps(ClickToken(user_key, item_id, campaign, position, issued))

    def loads(self, text: str, max_age: float, now: float | None = None) -> ClickToken:
        """The token's content; raises :class:`TokenError` when tampered, malformed or expired."""
        try:
            body, _, signature = text.encode().partition(b".")
            if not hmac.compare_digest(signature, self._signature(body)):
                raise TokenError("invalid")
            payload = json.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
            sealed, item_id, campaign, position, issued = payload
            token = ClickToken(self.unseal(sealed), str(item_id), str(campaign), int(position), int(issued))
        except (ValueError, TypeError, UnicodeError) as exc:
            raise TokenError("invalid") from exc
        age = (time.time() if now is None else now) - token.issued_at
        if age > max_age:
            raise TokenError("expired")
        return token
