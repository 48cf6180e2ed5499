"""``recs.forget_user()``, ``recs.export_user()`` and retention."""

from __future__ import annotations

from .core import RecsCore


class PrivacyAPI(RecsCore):
    """Privacy methods of ``Recs``."""
