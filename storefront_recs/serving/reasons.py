"""Why an item was picked: the text shown by default, and its parts.

``Reason`` is the text (a ``str``, so every place that stores or compares reasons keeps
working) that also carries ``kind`` and ``item_id``: a shop that wants its own wording, or
that must not put catalogue text into HTML unescaped, builds its label from those.
The text holds the raw catalogue title: it is text, never HTML.
"""

from __future__ import annotations

from typing import Any

# kind -> what the item id (if any) names
REASON_KINDS = {
    "often_viewed_with": "the item the answer is for",
    "similar_to": "the item the answer is for",
    "bought_together_with": "the item the answer is for",
    "because_you_viewed": "an item the visitor viewed",
    "because_you_added": "an item the visitor put in the cart",
    "because_you_bought": "an item the visitor bought",
    "your_taste": None,
    "popular": None,
    "popular_in_category": None,
    "trending": None,
    "recently_viewed": None,
    "featured": None,
    "catalogue": None,
}


class Reason(str):
    """A reason's text with ``kind`` (one of ``REASON_KINDS``) and the ``item_id`` it names."""

    kind: str
    item_id: str | None

    def __new__(cls, text: str, kind: str, item_id: str | None = None) -> Reason:
        reason = super().__new__(cls, text)
        reason.kind = kind
        reason.item_id = item_id
        return reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (Reason, (str(self), self.kind, self.item_id))


def reason_parts(reason: str) -> tuple[str | None, str | None]:
    """``(kind, item_id)`` of a reason; ``(None, None)`` for plain text from elsewhere."""
    if isinstance(reason, Reason):
        return reason.kind, reason.item_id
    return None, None
