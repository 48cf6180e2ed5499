"""Business rules applied to every answer: availability, filters, exclusions, boosts, pins,
diversity. Rules are config (``RECS_BOOST``, ``RECS_PINNED``, ``RECS_MAX_PER_CATEGORY``)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from .catalog_cache import CachedItem


@dataclass(frozen=True)
class Filters:
    """What the caller asks for: a category, a price range, items to leave out."""

    category: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    exclude: frozenset[str] = field(default_factory=frozenset)

    def admits(self, item: CachedItem | None) -> bool:
        if item is None or not item.available or item.id in self.exclude:
            return False
        if self.category is not None and item.category != self.category:
            return False
        if self.min_price is not None and (item.price is None or item.price < self.min_price):
            return False
        return not (self.max_price is not None and (item.price is None or item.price > self.max_price))

    def excluding(self, item_ids: Iterable[str]) -> Filters:
        return Filters(self.category, self.min_price, self.max_price, self.exclude | frozenset(item_ids))


def make_filters(
    category: str | None = None,
    min_price: float | None = None,
    max_price: float | None = None,
    exclude: Iterable[str] | str | None = None,
) -> Filters:
    """Filters from API arguments; ``exclude`` may be a comma-separated string."""
    if isinstance(exclude, str):
        exclude = [part for part in exclude.split(",") if part]
    return Filters(category, min_price, max_price, frozenset(exclude or ()))


@dataclass(frozen=True)
class Rules:
    """Shop-wide rules from config."""

    boost: Mapping[str, float]  # category -> multiplier (< 1 buries)
    boost_items: Mapping[str, float]  # item id -> multiplier
    pinned: Mapping[str, list[str]]  # widget kind -> item ids always first (when admissible)
    max_per_category: Mapping[str, float]  # widget kind -> max share of n per category
    repeat_buy_categories: frozenset[str]  # purchased items here may be recommended again

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Rules:
        return cls(
            boost=dict(config["RECS_BOOST_CATEGORIES"]),
            boost_items=dict(config["RECS_BOOST_ITEMS"]),
            pinned={k: list(v) for k, v in config["RECS_PINNED"].items()},
            max_per_category=dict(config["RECS_MAX_PER_CATEGORY"]),
            repeat_buy_categories=frozenset(config["RECS_REPEAT_BUY_CATEGORIES"]),
        )

    def adjust(self, item: CachedItem, score: float) -> float:
        factor = self.boost.get(item.category or "", 1.0) * self.boost_items.get(item.id, 1.0)
        return score * factor

    def category_cap(self, kind: str, n: int) -> int:
        share = self.max_per_category.get(kind)
        if not share:
            return n
        return max(1, math.ceil(n * share))


def diversify(ranked: Iterable[tuple[CachedItem, float, str]], n: int, cap: int) -> list[tuple[CachedItem, float, str]]:
    """Keep the order but allow at most ``cap`` items per category; overflow fills any gap.
    Reads ``ranked`` only as far as it needs to."""
    if cap >= n:
        return list(islice(ranked, n))
    chosen: list[tuple[CachedItem, float, str]] = []
    overflow: list[tuple[CachedItem, float, str]] = []
    per_category: dict[str | None, int] = {}
    for entry in ranked:
        category = entry[0].category
        if per_category.get(category, 0) < cap:
            per_category[category] = per_category.get(category, 0) + 1
            chosen.append(entry)
            if len(chosen) == n:
                return chosen
        else:
            overflow.append(entry)
    return chosen + overflow[: n - len(chosen)]
