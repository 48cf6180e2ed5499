"""An in-process copy of the catalogue, refreshed when it changes.

Every worker polls ``max(updated_at)`` at most once per ``refresh_seconds`` and reads only the
rows changed since, so a change of stock or price shows in every worker within about that time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from ..models import Item
from ..outages import keep_last_good


@dataclass(frozen=True)
class CachedItem:
    id: str
    title: str | None
    url: str | None
    image_url: str | None
    price: float | None
    category: str | None
    available: bool
    text: dict  # title/description/category/attributes, for content vectors of new items


class CatalogCache:
    def __init__(self, engine: Engine, refresh_seconds: float = 1.0) -> None:
        self._engine = engine
        self.refresh_seconds = refresh_seconds
        self.items: dict[str, CachedItem] = {}
        self.version = 0  # bumps on every change seen
        self._seen_until: datetime | None = None
        self._checked_at = -1e9
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Pull changes if the poll interval has passed (cheap: one indexed max() query)."""
        if time.monotonic() - self._checked_at < self.refresh_seconds:
            return
        if not self._lock.acquire(blocking=not self.items and self._seen_until is None):
            return
        try:
            self._checked_at = time.monotonic()
            try:
                with self._engine.connect() as conn:
                    newest = conn.execute(select(func.max(Item.updated_at))).scalar()
                    if newest is None or (self._seen_until is not None and newest <= self._seen_until):
                        return
                    stmt = select(Item.__table__)
                    if self._seen_until is not None:
                        # Rows written in the same instant as the last poll may have committed later.
                        stmt = stmt.where(Item.updated_at >= self._seen_until - timedelta(seconds=5))
                    rows = conn.execute(stmt).mappings().all()
            except Exception as exc:  # a database outage: the copy in memory keeps serving
                keep_last_good("the catalogue cache", exc, have_copy=bool(self.items))
                return
            items = dict(self.items)
            for row in rows:
                items[row["id"]] = CachedItem(
                    id=row["id"],
                    title=row["title"],
                    url=row["url"],
                    image_url=row["image_url"],
                    price=row["price"],
                    category=row["category"],
                    available=bool(row["active"] and row["in_stock"]),
                    text={k: row[k] for k in ("id", "title", "description", "category", "attributes")},
                )
            self.items = items
            self._seen_until = newest
            self.version += 1
        finally:
            self._lock.release()

    def get(self, item_id: str) -> CachedItem | None:
        return self.items.get(item_id)

    def available(self, item_id: str) -> bool:
        item = self.items.get(item_id)
        return item is not None and item.available
