"""Keys of cached answers: everything an answer is computed from, in hashable form.

A cached answer is served only when the request's key equals the one it was computed under,
so each key must cover every input: the model bundle, the catalogue, the time-dependent parts
(session window, hour and weekday of popularity), the request, and the visitor's history.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import datetime
from typing import Any

from .visitor_events import VisitorHistory


def frozen(value: Any) -> Hashable:
    """A hashable, type-keeping copy of a context value (``1``, ``1.0`` and ``True`` stay apart:
    segment matching compares their text). Raises ``TypeError`` for what cannot be frozen."""
    if isinstance(value, Mapping):
        return ("map", frozenset((frozen(k), frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("seq", tuple(frozen(v) for v in value))
    if isinstance(value, set | frozenset):
        return ("set", frozenset(frozen(v) for v in value))
    hash(value)
    return (type(value), value)


def history_key(history: VisitorHistory, session_start: datetime) -> tuple[Any, ...]:
    """The visitor's events (a 64-bit hash of them, with their count and the newest one) and how
    many fall in the current session: a new event, or one leaving the session, changes it.

    Only this visitor's own answers are cached under a key that holds their history, so a hash
    collision would have to be between two histories of one visitor.
    """
    events = history.events
    in_session = 0
    for _, _, ts in events:  # newest first
        if ts < session_start:
            break
        in_session += 1
    return (len(events), events[0] if events else None, hash(tuple(events)), in_session)
