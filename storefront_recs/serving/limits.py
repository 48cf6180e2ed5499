"""How many items an answer may hold: one rule for every path (Python API, template helper,
HTTP, email blocks)."""

from __future__ import annotations

import numbers

from ..errors import ValidationError


def checked_n(n: object, max_n: int) -> int:
    """``n`` as an int clamped to ``max_n`` (``RECS_MAX_N``); :class:`ValidationError` when it is
    not a whole number or below 1."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ValidationError(f"n must be a whole number, not {n!r}", {"n": "not a whole number"})
    if n < 1:
        raise ValidationError(f"n must be at least 1, not {n}", {"n": "must be at least 1"})
    return min(int(n), int(max_n))
