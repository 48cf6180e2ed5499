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
from ..models import Event
from ..outages import keep_last_good
from .catalog_cache import CatalogCache
from .model import ModelBundle

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
        # (what they were made from, when, the lists by category)
        self._by_category: tuple[tuple[Any, ...], float, dict[str, list[str]]] | None = None
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

    def state(self, bundle: ModelBundle, catalog: CatalogCache, context: Mapping[str, Any]) -> tuple[Any, ...]:
        """What :meth:`ranked` and :meth:`ranked_in_category` answer from besides the bundle,
        the catalogue and the context: the hour and weekday, and whether the category lists
        lag behind the catalogue (then the time they were made, until they are due again).

        Lists made from this bundle and catalogue (or to be made from them on first use) depend
        on nothing else, so answers cached with them stay valid as long as those do.
        """
        now = _moment(context)
        cached = self._by_category
        lagging = cached is not None and cached[0] != (bundle.version, catalog.version) \
            and _still_serves(cached, (bundle.version, catalog.version))
        return now.hour, now.weekday(), ("lagging", cached[1]) if lagging and cached else None

    def ranked_in_category(self, bundle: ModelBundle | None, catalog: CatalogCache, category: str) -> list[str]:
        """Item ids of one category by overall popularity. With a model they are made again for
        a new model at once and for a changed catalogue at most once a minute; without one,
        from the database once a minute."""
        key: tuple[Any, ...] = (("db", int(time.monotonic() // CATEGORY_REFRESH_SECONDS)) if bundle is None
                                else (bundle.version, catalog.version))
        cached = self._by_category
        if cached is None or not _still_serves(cached, key):
            groups: dict[str, list[str]] = {}
            if bundle is None:
                source = self._from_database()
            else:
                source = [bundle.item_ids[i] for i in np.argsort(-bundle.popularity, kind="stable")]
            for item_id in source:
                item = catalog.get(item_id)
                if item is not None and item.category:
                    groups.setdefault(item.category, []).append(item_id)
            cached = (key, time.monotonic(), groups)
            self._by_category = cached
        return cached[2].get(category, [])

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
        try:
            with self._engine.connect() as conn:
                ranked = [str(row[0]) for row in conn.execute(stmt)]
        except Exception as exc:  # a database outage: the last list keeps serving
            keep_last_good("the popularity list", exc, have_copy=cached is not None)
            assert cached is not None
            return cached[1]
        self._db_ranked = (time.monotonic(), ranked)
        return ranked


def _still_serves(cached: tuple[tuple[Any, ...], float, Any], key: tuple[Any, ...]) -> bool:
    """Whether category lists made for ``cached[0]`` at ``cached[1]`` may answer for ``key``: made
    for it, or from the same model (or database) and less than a refresh period old."""
    made_for, made_at = cached[0], cached[1]
    return made_for == key or (made_for[0] == key[0] and time.monotonic() - made_at < CATEGORY_REFRESH_SECONDS)


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
