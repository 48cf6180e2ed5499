"""Popularity for cold starts, aware of the context: hour of day, weekday, category, segment.

With a model bundle the decayed popularity and its hourly and weekday profiles come from
training; without one, counts of recent events are read from the database (cached).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select

from ..db import utcnow
from ..engine.bundle import ModelBundle
from ..models import Event
from .catalog_cache import CatalogCache

HOUR_WEIGHT = 0.5
WEEKDAY_WEIGHT = 0.25
FALLBACK_DAYS = 30
FALLBACK_REFRESH_SECONDS = 300
CATEGORY_REFRESH_SECONDS = 60


def _norm(scores: np.ndarray) -> np.ndarray:
    top = float(scores.max()) if scores.size else 0.0
    return scores / top if top > 0 else np.zeros_like(scores, dtype=np.float32)


class PopularityIndex:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._ranked: dict[tuple[str, int, int], list[str]] = {}
        self._by_category: tuple[tuple[str, int], dict[str, list[str]]] | None = None
        self._db_ranked: tuple[float, list[str]] | None = None
        self._lock = threading.Lock()

    def ranked(self, bundle: ModelBundle | None, catalog: CatalogCache, context: dict[str, Any]) -> list[str]:
        """Item ids by popularity for this moment (hour, weekday), most popular first."""
        if bundle is None:
            return self._from_database()
        now = _moment(context)
        key = (bundle.version, now.hour, now.weekday())
        ranked = self._ranked.get(key)
        if ranked is None:
            scores = (
                _norm(bundle.popularity)
                + HOUR_WEIGHT * _norm(bundle.popularity_by_hour[now.hour])
                + WEEKDAY_WEIGHT * _norm(bundle.popularity_by_weekday[now.weekday()])
            )
            order = np.argsort(-scores, kind="stable")
            ranked = [bundle.item_ids[i] for i in order[scores[order] > 0]]
            with self._lock:
                if len(self._ranked) > 64:
                    self._ranked.clear()
                self._ranked[key] = ranked
        segment = context.get("segment")
        return _segment_first(ranked, catalog, segment) if isinstance(segment, dict) and segment else ranked

    def state(self, context: Mapping[str, Any]) -> tuple[int, int, int]:
        """What :meth:`ranked` and :meth:`ranked_in_category` answer from besides the bundle,
        the catalogue and the context: the hour and weekday, and the category lists' period."""
        now = _moment(context)
        return now.hour, now.weekday(), int(time.monotonic() // CATEGORY_REFRESH_SECONDS)

    def ranked_in_category(self, bundle: ModelBundle | None, catalog: CatalogCache, category: str) -> list[str]:
        """Item ids of one category by overall popularity."""
        key = (bundle.version if bundle else "db", int(time.monotonic() // CATEGORY_REFRESH_SECONDS))
        cached = self._by_category
        if cached is None or cached[0] != key:
            groups: dict[str, list[str]] = {}
            if bundle is None:
                source = self._from_database()
            else:
                source = [bundle.item_ids[i] for i in np.argsort(-bundle.popularity, kind="stable")]
            for item_id in source:
                item = catalog.get(item_id)
                if item is not None and item.category:
                    groups.setdefault(item.category, []).append(item_id)
            cached = (key, groups)
            self._by_category = cached
        return cached[1].get(category, [])

    def _from_database(self) -> list[str]:
        cached = self._db_ranked
        if cached is not None and time.monotonic() - cached[0] < FALLBACK_REFRESH_SECONDS:
            return cached[1]
        since = utcnow() - timedelta(days=FALLBACK_DAYS)
        stmt = (
            select(Event.item_id, func.count())
            .where(Event.ts >= since, Event.item_id.is_not(None), Event.type.in_(("view", "add_to_cart", "purchase")))
            .group_by(Event.item_id)
            .order_by(func.count().desc())
            .limit(5000)
        )
        with self._engine.connect() as conn:
            ranked = [str(row[0]) for row in conn.execute(stmt)]
        self._db_ranked = (time.monotonic(), ranked)
        return ranked


def _moment(context: Mapping[str, Any]) -> datetime:
    at = context.get("at")
    return at if isinstance(at, datetime) else utcnow()


def _segment_first(ranked: list[str], catalog: CatalogCache, segment: dict[str, Any], window: int = 500) -> list[str]:
    """Within the top ``window``, items whose attributes match the segment come first."""
    def matches(item_id: str) -> bool:
        item = catalog.get(item_id)
        attributes = (item.text.get("attributes") or {}) if item else {}
        return any(str(attributes.get(k)) == str(v) for k, v in segment.items())

    head = ranked[:window]
    return [i for i in head if matches(i)] + [i for i in head if not matches(i)] + ranked[window:]
