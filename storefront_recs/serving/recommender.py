"""The recommender: model candidates -> live session -> rules -> diversity -> fallback fill.

Everything here reads in-process state (the mmapped bundle, the catalogue cache, popularity)
plus, for personal answers, one indexed query for the visitor's recent events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from itsdangerous import Signer

from ..db import utcnow
from ..engine.bundle import ModelBundle
from ..tracking.identity import Visitor
from .catalog_cache import CachedItem, CatalogCache
from .new_items import NewItems
from .popularity import PopularityIndex
from .recommendation import Recommendation
from .rules import Filters, Rules, diversify
from .visitor_events import VisitorHistory, load_history

ANON_PREFIX = "anon:"
# How many recent distinct items seed item-item candidates, and their weights by recency.
SEED_ITEMS = 5
SEED_DECAY = 0.75
SIMILAR_CACHE_SIZE = 20_000

Candidates = dict[str, tuple[float, str]]  # item id -> (score, reason)


@dataclass
class Answer:
    items: list[Recommendation]
    model_version: str | None
    source: str  # "model" when any item came from the model, else "fallback"

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [r.to_dict() for r in self.items],
            "model_version": self.model_version,
            "source": self.source,
        }


def top_of_row(matrix: Any, row: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` largest entries of one CSR row (precomputed neighbours), the row itself left out.

    Slicing ``indptr`` directly costs microseconds, where a scipy row selection costs a
    fraction of a millisecond: this runs several times per for-you answer.
    """
    start, end = matrix.indptr[row], matrix.indptr[row + 1]
    ids, scores = matrix.indices[start:end], matrix.data[start:end]
    keep = ids != row
    ids, scores = ids[keep], scores[keep]
    if len(ids) > n:
        top = np.argpartition(-scores, n)[:n]
        ids, scores = ids[top], scores[top]
    order = np.argsort(-scores, kind="stable")
    return ids[order], scores[order]


def normalised(scores: np.ndarray) -> np.ndarray:
    top = float(np.max(scores)) if len(scores) else 0.0
    return scores / top if top > 0 else np.zeros_like(scores)


def add(candidates: Candidates, item_id: str, score: float, reason: str) -> None:
    """Sum scores per item; the reason of the strongest contribution wins."""
    if score <= 0:
        return
    previous = candidates.get(item_id)
    if previous is None:
        candidates[item_id] = (score, reason)
    else:
        candidates[item_id] = (previous[0] + score, reason if score > previous[0] else previous[1])


class Recommender:
    def __init__(
        self,
        config: Any,
        engine: Any,
        bundle: Callable[[], ModelBundle | None],
        catalog: CatalogCache,
        popularity: PopularityIndex,
        secret: bytes,
        is_erased: Callable[[str], bool] = lambda _key: False,
    ) -> None:
        self.config = config
        self.engine = engine
        self.bundle = bundle
        self.catalog = catalog
        self.popularity = popularity
        self.is_erased = is_erased
        self.rules = Rules.from_config(config)
        self.weights = {
            "event": dict(config["RECS_EVENT_WEIGHTS"]),
            "for_you": dict(config["RECS_BLEND"]),
            "similar": dict(config["RECS_SIMILAR_BLEND"]),
        }
        self._signer = Signer(secret, salt="storefront-recs.recommendation")
        self.new_items = NewItems()
        self._similar_cache: dict[tuple[str, int], Candidates] = {}
        self._similar_key: tuple[str, int] | None = None
        self._token_signatures: dict[tuple[str, str], str] = {}
        self._popular_order: tuple[str, np.ndarray] | None = None

    # -- public verbs ---------------------------------------------------------------------------
    def similar(self, item_id: str, n: int, filters: Filters) -> Answer:
        self.catalog.refresh()
        bundle = self.bundle()
        seed = self.catalog.get(item_id)
        candidates = self._similar_candidates(bundle, item_id, n) if bundle is not None else {}
        return self._finish("similar", candidates, n, filters.excluding([item_id]), bundle,
                            category=seed.category if seed else None, seed_item=item_id)

    def _similar_candidates(self, bundle: ModelBundle, item_id: str, n: int) -> Candidates:
        """Model candidates for an item; cached per model and new-item set, since they only
        change with those (rules, stock and prices are applied afterwards, per request)."""
        depth = max(4 * n, 40)
        key = (bundle.version, id(self.new_items.get(bundle, self.catalog)))
        if key != self._similar_key:
            self._similar_cache, self._similar_key = {}, key
        cached = self._similar_cache.get((item_id, depth))
        if cached is not None:
            return cached
        title = self._title(item_id)
        candidates: Candidates = {}
        w = self.weights["similar"]
        idx = bundle.item_index.get(item_id)
        if idx is not None:
            self._add_ranked(candidates, bundle, *top_of_row(bundle.itemitem.similarity, idx, depth),
                             w.get("itemitem", 0), f"often viewed with {title}")
            self._add_ranked(candidates, bundle, *bundle.similar_als(idx, depth), w.get("als", 0),
                             f"similar to {title}")
        ids, scores = self._content_neighbours(bundle, item_id, depth)
        for other, score in zip(ids, normalised(scores), strict=True):
            add(candidates, str(other), float(score) * w.get("content", 0), f"similar to {title}")
        if len(self._similar_cache) >= SIMILAR_CACHE_SIZE:
            self._similar_cache = {}
        self._similar_cache[(item_id, depth)] = candidates
        return candidates

    def for_you(self, visitor: Visitor, n: int, filters: Filters, context: dict[str, Any] | None = None) -> Answer:
        self.catalog.refresh()
        bundle = self.bundle()
        masked = visitor.user_key is not None and self.is_erased(visitor.user_key)
        history = VisitorHistory() if masked else load_history(self.engine, visitor)
        excluded = set(history.in_cart) | {
            item for item in history.purchased
            if (self.catalog.get(item) is None
                or (self.catalog.get(item).category or "") not in self.rules.repeat_buy_categories)  # type: ignore[union-attr]
        }
        candidates: Candidates = {}
        if bundle is not None and not masked:
            self._personal_candidates(candidates, bundle, visitor, history, n)
        category = (context or {}).get("category") or self._recent_category(history)
        return self._finish("for-you", candidates, n, filters.excluding(excluded), bundle, category=category,
                            context=context)

    def trending(self, n: int, filters: Filters, context: dict[str, Any] | None = None) -> Answer:
        self.catalog.refresh()
        bundle = self.bundle()
        candidates: Candidates = {}
        if bundle is not None:
            scores = bundle.trending
            top = np.argsort(-scores)[: max(4 * n, 40)]
            for idx, score in zip(top, normalised(scores[top]), strict=True):
                add(candidates, bundle.item_ids[int(idx)], float(score), "trending now")
        return self._finish("trending", candidates, n, filters, bundle, context=context)

    def recently_viewed(self, visitor: Visitor, n: int, filters: Filters) -> Answer:
        self.catalog.refresh()
        bundle = self.bundle()
        history = load_history(self.engine, visitor)
        items: list[Recommendation] = []
        viewed = history.viewed(limit=4 * n + 10)
        for rank, item_id in enumerate(viewed):
            item = self.catalog.get(item_id)
            if filters.admits(item) and item is not None:
                items.append(self._recommendation("recently-viewed", item, 1.0 / (rank + 1), "you viewed this",
                                                  "model", len(items), bundle.version if bundle else "-"))
            if len(items) == n:
                break
        return Answer(items, bundle.version if bundle else None, "model")

    def bought_together(self, item_id: str, n: int, filters: Filters) -> Answer:
        self.catalog.refresh()
        bundle = self.bundle()
        seed = self.catalog.get(item_id)
        candidates: Candidates = {}
        if bundle is not None and item_id in bundle.item_index:
            ids, scores = bundle.bought_together(bundle.item_index[item_id], max(4 * n, 40))
            self._add_ranked(candidates, bundle, ids, scores, 1.0, f"bought together with {self._title(item_id)}")
        return self._finish("bought-together", candidates, n, filters.excluding([item_id]), bundle,
                            category=seed.category if seed else None, seed_item=item_id)

    def _title(self, item_id: str) -> str:
        item = self.catalog.get(item_id)
        return (item.title if item else None) or item_id

    # -- candidates -----------------------------------------------------------------------------
    def _add_ranked(self, candidates: Candidates, bundle: ModelBundle, ids: np.ndarray, scores: np.ndarray,
                    weight: float, reason: str) -> None:
        if weight <= 0 or not len(ids):
            return
        for idx, score in zip(ids, normalised(np.asarray(scores, dtype=np.float32)), strict=True):
            add(candidates, bundle.item_ids[int(idx)], float(score) * weight, reason)

    def _personal_candidates(self, candidates: Candidates, bundle: ModelBundle, visitor: Visitor,
                             history: VisitorHistory, n: int) -> None:
        w = self.weights["for_you"]
        depth = max(4 * n, 50)
        user_idx = None
        if visitor.user_key is not None:
            user_idx = bundle.user_index.get(visitor.user_key)
        if user_idx is None and visitor.anonymous_id is not None:
            user_idx = bundle.user_index.get(ANON_PREFIX + visitor.anonymous_id)
        fresh = history.newest() is not None and history.newest() > bundle.created_at  # type: ignore[operator]
        if user_idx is not None and not fresh:
            ids, scores = bundle.recommend_user(user_idx, depth)
        else:
            items, weights = self._interaction_weights(bundle, history)
            if not items:
                return
            ids, scores = bundle.recommend_vector(bundle.fold_in(items, weights), depth)
        self._add_ranked(candidates, bundle, ids, scores, w.get("als", 0), "picked for your taste")
        if w.get("popularity", 0) > 0:
            top = self._most_popular(bundle)[:depth]
            self._add_ranked(candidates, bundle, top, bundle.popularity[top], w["popularity"], "popular right now")
        # Item-item neighbours of what the visitor just looked at: strong on sparse shop data.
        if w.get("itemitem", 0) > 0:
            for rank, (item_id, verb) in enumerate(self._seed_items(history)):
                idx = bundle.item_index.get(item_id)
                if idx is None:
                    continue
                title = self._title(item_id)
                ids, scores = top_of_row(bundle.itemitem.similarity, idx, depth)
                self._add_ranked(candidates, bundle, ids, scores, w["itemitem"] * SEED_DECAY**rank,
                                 f"because you {verb} {title}")

    def _most_popular(self, bundle: ModelBundle) -> np.ndarray:
        """Item indexes by decayed popularity, computed once per model."""
        cached = self._popular_order
        if cached is None or cached[0] != bundle.version:
            cached = (bundle.version, np.argsort(-bundle.popularity, kind="stable")[:1000])
            self._popular_order = cached
        return cached[1]

    def _interaction_weights(self, bundle: ModelBundle, history: VisitorHistory) -> tuple[list[int], list[float]]:
        """Event weights, with the current session's events counted more."""
        weights = self.weights["event"]
        session_start = utcnow() - timedelta(minutes=self.config["RECS_SESSION_MINUTES"])
        boost = float(self.config["RECS_SESSION_BOOST"])
        totals: dict[int, float] = {}
        for item_id, kind, ts in history.events:
            idx = bundle.item_index.get(item_id)
            weight = float(weights.get(kind, 0.0))
            if idx is None or weight <= 0:
                continue
            totals[idx] = totals.get(idx, 0.0) + weight * (boost if ts >= session_start else 1.0)
        return list(totals), list(totals.values())

    def _seed_items(self, history: VisitorHistory) -> list[tuple[str, str]]:
        verbs = {"view": "viewed", "add_to_cart": "added", "purchase": "bought", "click": "viewed"}
        seeds: list[tuple[str, str]] = []
        seen: set[str] = set()
        for item_id, kind, _ in history.events:
            if kind in verbs and item_id not in seen:
                seen.add(item_id)
                seeds.append((item_id, verbs[kind]))
                if len(seeds) == SEED_ITEMS:
                    break
        return seeds

    def _recent_category(self, history: VisitorHistory) -> str | None:
        for item_id, _, _ in history.events:
            item = self.catalog.get(item_id)
            if item is not None and item.category:
                return item.category
        return None

    def _content_neighbours(self, bundle: ModelBundle, item_id: str, n: int) -> tuple[list[str], np.ndarray]:
        """Content neighbours among trained items and items added since the training run."""
        new_items = self.new_items.get(bundle, self.catalog)
        if item_id in bundle.content_index:
            vector = bundle.content.vectors[bundle.content_index[item_id]]
            ids, scores = bundle.similar_content(item_id, n)
        else:
            vector = new_items.vector(item_id)
            if vector is None:
                return [], np.zeros(0, np.float32)
            ids, scores = bundle.similar_content_vector(vector, n)
        pairs = list(zip((str(i) for i in ids), (float(s) for s in scores), strict=True))
        pairs += new_items.nearest(vector, n, exclude=item_id)
        pairs.sort(key=lambda pair: -pair[1])
        return [p[0] for p in pairs[:n]], np.array([p[1] for p in pairs[:n]], dtype=np.float32)

    # -- rules, fallback, presentation ----------------------------------------------------------
    def _finish(self, kind: str, candidates: Candidates, n: int, filters: Filters, bundle: ModelBundle | None,
                *, category: str | None = None, seed_item: str | None = None,
                context: dict[str, Any] | None = None) -> Answer:
        ranked: list[tuple[CachedItem, float, str]] = []
        for item_id, (score, reason) in candidates.items():
            item = self.catalog.get(item_id)
            if filters.admits(item) and item is not None:
                ranked.append((item, self.rules.adjust(item, score), reason))
        ranked.sort(key=lambda entry: (-entry[1], entry[0].id))
        pinned = [self.catalog.get(i) for i in self.rules.pinned.get(kind, [])]
        pinned_entries = [(item, 1e9, "featured") for item in pinned if filters.admits(item) and item is not None]
        pinned_ids = {entry[0].id for entry in pinned_entries}
        ranked = pinned_entries + [entry for entry in ranked if entry[0].id not in pinned_ids]
        chosen = diversify(ranked, n, self.rules.category_cap(kind, n))
        from_model = len(chosen)
        if len(chosen) < n:
            taken = filters.excluding(entry[0].id for entry in chosen)
            chosen += self._fallback(n - len(chosen), taken, bundle, category, seed_item, context)
        version = bundle.version if bundle else "-"
        items = [
            self._recommendation(kind, item, score, reason, "model" if position < from_model else "fallback",
                                 position, version)
            for position, (item, score, reason) in enumerate(chosen)
        ]
        return Answer(items, bundle.version if bundle else None, "model" if from_model else "fallback")

    def _fallback(self, needed: int, filters: Filters, bundle: ModelBundle | None, category: str | None,
                  seed_item: str | None, context: dict[str, Any] | None) -> list[tuple[CachedItem, float, str]]:
        """Content neighbours, then popular in the category, then popular, then the catalogue."""
        chosen: list[tuple[CachedItem, float, str]] = []
        taken = set(filters.exclude)

        def take(item_ids: Iterable[str], scores: Iterable[float], reason: Callable[[CachedItem], str]) -> None:
            for item_id, score in zip(item_ids, scores, strict=False):
                if len(chosen) == needed:
                    return
                item = self.catalog.get(item_id)
                if item is not None and item.id not in taken and filters.admits(item):
                    taken.add(item.id)
                    chosen.append((item, float(score), reason(item)))

        if seed_item is not None and bundle is not None:
            title = self._title(seed_item)
            ids, scores = self._content_neighbours(bundle, seed_item, needed * 4 + 20)
            take(ids, scores, lambda _: f"similar to {title}")
        ranked = self.popularity.ranked(bundle, self.catalog, context or {})
        if category is not None and len(chosen) < needed:
            in_category = self.popularity.ranked_in_category(bundle, self.catalog, category)
            take(in_category, (0.5 / (r + 1) for r in range(len(in_category))), lambda i: f"popular in {category}")
        if len(chosen) < needed:
            take(ranked, (0.25 / (r + 1) for r in range(len(ranked))),
                 lambda i: f"popular in {i.category}" if i.category else "popular right now")
        if len(chosen) < needed:
            rest = sorted(self.catalog.items)
            take(rest, (0.0 for _ in rest), lambda _: "from our catalogue")
        return chosen

    def _recommendation(self, kind: str, item: CachedItem, score: float, reason: str, source: str,
                        position: int, version: str) -> Recommendation:
        return Recommendation(
            item_id=item.id, score=score, reason=reason, source=source, title=item.title, url=item.url,
            image_url=item.image_url, price=item.price, category=item.category,
            token=self._token(kind, version, position),
        )

    def _token(self, kind: str, version: str, position: int) -> str:
        """``kind|model version|position|signature``: says which widget and model showed an
        item, for attribution. Signed once per (kind, version), so it costs nothing per item."""
        signature = self._token_signatures.get((kind, version))
        if signature is None:
            signature = self._signer.get_signature(f"{kind}|{version}").decode()
            self._token_signatures[(kind, version)] = signature
        return f"{kind}|{version}|{position}|{signature}"

