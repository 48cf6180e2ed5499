"""The ``Recommendation`` every recommendation method returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The recommendation lists a page can show (widgets, and what experiments may target).
WIDGET_KINDS = ("similar", "for-you", "trending", "recently-viewed", "bought-together")


@dataclass(frozen=True)
class Recommendation:
    """One recommended item with why it was picked; ``to_dict()`` is the HTTP item shape.

    ``reason`` is plain text that may hold a catalogue title: escape it wherever it goes into
    HTML. ``reason_kind`` (see ``serving.reasons.REASON_KINDS``) and ``reason_item_id`` are its
    parts, for a shop that builds its own label.
    """

    item_id: str
    score: float
    reason: str
    source: str  # "model" | "fallback"
    title: str | None = None
    url: str | None = None
    image_url: str | None = None
    price: float | None = None
    category: str | None = None
    token: str | None = None
    reason_kind: str | None = None
    reason_item_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.item_id,
            "title": self.title,
            "url": self.url,
            "image_url": self.image_url,
            "price": self.price,
            "score": round(float(self.score), 6),
            "reason": self.reason,
            "reason_kind": self.reason_kind,
            "reason_item_id": self.reason_item_id,
        }
        if self.token:
            data["token"] = self.token
        return data
