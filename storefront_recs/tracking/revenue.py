"""Which purchases count as revenue, and how much a browser's report may count for.

A browser can report any purchase (the public endpoint takes anyone's events), so the
dashboard, experiment results and email attribution prefer the shop's own, server-side
purchases (``recs.track``, imports) when it sends them: ``RECS_REVENUE_SOURCE``. A browser's
purchase line counts for at most ``RECS_MAX_BROWSER_PURCHASE_VALUE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, select

from ..models import Event
from .origin import BROWSER, ORIGINS, SHOP

REVENUE_SOURCES = ("auto", "shop", "browser", "all")


@dataclass(frozen=True)
class RevenuePolicy:
    source: str = "auto"
    browser_cap: float = 10_000.0

    @classmethod
    def from_config(cls, config: Any) -> RevenuePolicy:
        source = str(config.get("RECS_REVENUE_SOURCE", "auto"))
        if source not in REVENUE_SOURCES:
            raise ValueError(f"RECS_REVENUE_SOURCE is one of {', '.join(REVENUE_SOURCES)}, not {source!r}")
        return cls(source, float(config.get("RECS_MAX_BROWSER_PURCHASE_VALUE", 10_000.0)))

    def origins(self, conn: Connection, since: datetime, until: datetime) -> frozenset[str]:
        """The origins whose purchases count in this period."""
        if self.source == "all":
            return frozenset(ORIGINS)
        if self.source != "auto":
            return frozenset({SHOP if self.source == "shop" else BROWSER})
        shop_sent = conn.scalar(select(exists().where(
            Event.type == "purchase", Event.origin == SHOP, Event.ts >= since, Event.ts <= until)))
        return frozenset({SHOP if shop_sent else BROWSER})

    def value(self, origin: str, value: float | None) -> float:
        """What one purchase line counts for: a browser's value is capped."""
        amount = float(value or 0.0)
        return min(amount, self.browser_cap) if origin == BROWSER else amount
