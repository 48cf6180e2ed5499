"""The recommender: model candidates -> live session -> rules -> diversity -> fallback fill.

Everything here reads in-process state (the mmapped bundle, the catalogue cache, popularity)
plus, for personal answers, one indexed query for the visitor's recent events.
"""

from __future__ import annotations

import json
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from typing import Any

import numpy as np
from itsdangerous import Signer
from scipy import sparse

from ..db import utcnow
from ..engine.ann import one_blas_thread
from ..engine.data import ANON_PREFIX
from ..engine.plugin_sources import profile_lists
from ..outages import keep_last_good
from ..tracking.identity import Visitor
from .answer_keys import frozen, history_key
from .candidates import LRU, Candidates
from .catalog_cache import CachedItem, CatalogCache
from .limits import checked_n
from .model import ModelBundle
from .new_items import NewItems
from .popularity import PopularityIndex
from .reasons import Reason, reason_parts
from .recommendation import Recommendation
from .rules import Filters, Rules, diversify
from .visitor_events import VisitorHistory, load_history

# How many recent distinct items seed item-item candidates, and their weights by recency.
SEED_ITEMS = 5
SEED_DECAY = 0.75
SIMILAR_CACHE_SIZE = 20_000
CONTENT_CACHE_SIZE = 20_000
TASTE_CACHE_SIZE = 20_000  # visitors' top items by ALS (50 ids and scores each)
ANSWER_CACHE_SIZE = 4_096  # whole answers per worker, for-you and similar items each (~3 KB apiece)

TASTE = Reason("picked for your taste", "your_taste")
POPULAR = Reason("popular right now", "popular")
FEATURED = Reason("featured", "featured")
CATALOGUE = Reason("from our catalogue", "catalogue")


@dataclass
class Answer:
    items: list[Recommendation]
    model_version: str | None
    source: str  # "model" when any item came from the model, else "fallback"
    variant: str | None = None  # "experiment:variant" when an A/B test shaped the answer
    # JSON made of this answer, shared with its copies: (variant, version, source) -> (items, text)
    encoded: dict[tuple[str | None, ...], tuple[tuple[Recommendation, ...], str]] = field(
        default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [r.to_dict() for r in self.items],
            "model_version": self.model_version,
            "source": self.source,
            "variant": self.variant,
        }

    def to_json(self) -> str:
        """``to_dict()`` as compact JSON with sorted keys. A cached answer's copies share it:
        it is made once per variant, and again only for a copy whose items were changed."""
        key = (self.variant, self.model_version, self.source)
        items = tuple(self.items)
        made = self.encoded.get(key)
        if made is None or made[0] != items:  # items are immutable: equal tuples, equal JSON
            made = (items, json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True))
            self.encoded[key] = made
        return made[1]

    def copy(self) -> Answer:
        """A copy whose item list and variant the caller may change (items are immutable)."""
        return Answer(list(self.items), self.model_version, self.source, self.variant, self.encoded)


@dataclass(frozen=True)
class Settings:
    """How answers are made: blend weights and rules from config, or an experiment variant's
    overrides over them (``holdout``: "popular" answers with popular items, "none" with nothing)."""

    key: str
    weights: dict[str, dict[str, float]]
    rules: Rules
    holdout: str | None = None
    auto_blend: bool = False  # serve the for-you blend the training run chose (RECS_BLEND_AUTO)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], key: str = "") -> Settings:
        weights = {
            "event": dict(config["RECS_EVENT_WEIGHTS"]),
            "for_you": dict(config["RECS_BLEND"]),
            "similar": dict(config["RECS_SIMILAR_BLEND"]),
        }
        return cls(key, weights, Rules.from_config(config), config.get("holdout") or None,
                   bool(config.get("RECS_BLEND_AUTO", False)))


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


def model_user(bundle: ModelBundle, visitor: Visitor) -> int | None:
    """The visitor's row in the model: by user key, else by anonymous id (as training keys it)."""
    found = None if visitor.user_key is None else bundle.user_index.get(visitor.user_key)
    if found is None and visitor.anonymous_id is not None:
        found = bundle.user_index.get(ANON_PREFIX + visitor.anonymous_id)
    return found


def _last_key(visitor: Visitor, n: int, filters: Filters, context: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """The key of a visitor's latest for-you answer: its history is left out (unreadable in an
    outage), and so are the settings (its A/B variant, which cannot be looked up either)."""
    try:
        frozen_context: Any = frozen(context or {})
    except TypeError:
        frozen_context = None
    return (visitor, n, filters, frozen_context)


def normalised(scores: np.ndarray) -> np.ndarray:
    top = float(np.max(scores)) if len(scores) else 0.0
    return scores / top if top > 0 else np.zeros_like(scores)


def weighted(scores: np.ndarray, weight: float) -> np.ndarray:
    """Scores scaled to the best one, times the source's weight."""
    return normalised(np.asarray(scores, dtype=np.float32)).astype(np.float64) * weight


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
        self.settings = Settings.from_config(config)
        self.rules = self.settings.rules
        self.weights = self.settings.weights
        self._variant_settings: dict[str, Settings] = {}
        self._signer = Signer(secret, salt="storefront-recs.recommendation")
        self.new_items = NewItems()
        # Model candidates per item and content neighbours per item, for the current model and
        # set of new items (rules, stock and prices are applied afterwards, per request).
        self._similar_cache: LRU[tuple[str, int, str], Candidates] = LRU(SIMILAR_CACHE_SIZE)
        self._content_cache: LRU[tuple[str, int], tuple[list[str], np.ndarray]] = LRU(CONTENT_CACHE_SIZE)
        self._taste_cache: LRU[tuple[Any, ...], tuple[np.ndarray, np.ndarray]] = LRU(TASTE_CACHE_SIZE)
        # Whole answers, keyed by everything they are computed from (see ``answer_keys``).
        self._for_you_answers: LRU[tuple[Any, ...], Answer] = LRU(ANSWER_CACHE_SIZE)
        self._similar_answers: LRU[tuple[Any, ...], Answer] = LRU(ANSWER_CACHE_SIZE)
        # Each visitor's latest for-you answer, served while the database is unavailable.
        self._last_for_you: LRU[tuple[Any, ...], Answer] = LRU(ANSWER_CACHE_SIZE)
        self._cache_key: tuple[str, int] | None = None
        self._token_signatures: dict[tuple[str, str], str] = {}
        self._popular_order: tuple[str, np.ndarray] | None = None

    def settings_for(self, overrides: Mapping[str, Any] | None) -> Settings:
        """The default settings, or config with a variant's overrides on top (cached)."""
        if not overrides:
            return self.settings
        key = json.dumps(overrides, sort_keys=True, default=str)
        found = self._variant_settings.get(key)
        if found is None:
            own = {"RECS_BLEND_AUTO": False} if "RECS_BLEND" in overrides else {}  # a variant's blend is its own
            found = Settings.from_config(ChainMap(dict(overrides), own, self.config), key)
            if len(self._variant_settings) > 256:
                self._variant_settings.clear()
            self._variant_settings[key] = found
        return found

    def _holdout(self, kind: str, n: int, filters: Filters, bundle: ModelBundle | None, settings: Settings,
                 context: dict[str, Any] | None = None) -> Answer:
        """A holdout variant's answer: popular items only, or nothing."""
        if settings.holdout == "none":
            return Answer([], bundle.version if bundle else None, "fallback")
        return self._finish(kind, Candidates(), n, filters, bundle, context=context, rules=settings.rules)

    # -- public verbs ---------------------------------------------------------------------------
    def similar(self, item_id: str, n: int, filters: Filters, overrides: Mapping[str, Any] | None = None) -> Answer:
        n = checked_n(n, self.config["RECS_MAX_N"])
        self.catalog.refresh()
        bundle = self.bundle()
        settings = self.settings_for(overrides)
        if settings.holdout:
            return self._holdout("similar", n, filters.excluding([item_id]), bundle, settings)
        key = None if bundle is None else (item_id, n, filters, settings.key, *self._state_key(bundle, {}))
        cached = self._similar_answers.get(key) if key is not None else None
        if cached is not None:
            return cached.copy()
        seed = self.catalog.get(item_id)
        candidates = self._similar_candidates(bundle, item_id, n, settings) if bundle is not None else Candidates()
        answer = self._finish("similar", candidates, n, filters.excluding([item_id]), bundle,
                              category=seed.category if seed else None, seed_item=item_id, rules=settings.rules)
        if key is not None:
            self._similar_answers.put(key, answer.copy())
        return answer

    def _state_key(self, bundle: ModelBundle, context: Mapping[str, Any]) -> tuple[Any, ...]:
        """What every answer depends on besides the request: the model, the catalogue (and so
        the new items and stock), and the popularity lists of this moment."""
        return bundle.version, self.catalog.version, self.popularity.state(bundle, self.catalog, context)

    def _similar_candidates(self, bundle: ModelBundle, item_id: str, n: int,
                            settings: Settings | None = None) -> Candidates:
        """Model candidates for an item; cached per model and new-item set, since they only
        change with those (rules, stock and prices are applied afterwards, per request)."""
        depth = max(4 * n, 40)
        self._check_caches(bundle)
        settings = settings or self.settings
        cached = self._similar_cache.get((item_id, depth, settings.key))
        if cached is not None:
            return cached
        title = self._title(item_id)
        candidates = self._candidates(bundle)
        w = settings.weights["similar"]
        idx = bundle.item_index.get(item_id)
        with one_blas_thread():
            if idx is not None:
                self._add_ranked(candidates, bundle, *top_of_row(bundle.itemitem.similarity, idx, depth),
                                 w.get("itemitem", 0), Reason(f"often viewed with {title}", "often_viewed_with", item_id))
                self._add_ranked(candidates, bundle, *bundle.similar_als(idx, depth), w.get("als", 0),
                                 Reason(f"similar to {title}", "similar_to", item_id))
                self._plugin_neighbours(candidates, bundle, idx, depth, w,
                                        Reason(f"similar to {title}", "similar_to", item_id))
            ids, scores = self._content_neighbours(bundle, item_id, depth)
        candidates.add_ids(ids, weighted(scores, w.get("content", 0)), Reason(f"similar to {title}", "similar_to", item_id))
        candidates.resolve()  # once, here, not on every request that reads the cache
        self._similar_cache.put((item_id, depth, settings.key), candidates)
        return candidates

    def _check_caches(self, bundle: ModelBundle) -> None:
        """Empty the per-item caches when the model or the set of new items changes."""
        key = (bundle.version, id(self.new_items.get(bundle, self.catalog)))
        if key != self._cache_key:
            self._similar_cache.clear()
            self._content_cache.clear()
            self._taste_cache.clear()
            self._for_you_answers.clear()
            self._similar_answers.clear()
            self._cache_key = key

    @staticmethod
    def _candidates(bundle: ModelBundle | None) -> Candidates:
        return Candidates() if bundle is None else Candidates(bundle.item_ids, bundle.item_index)

    def for_you(self, visitor: Visitor, n: int, filters: Filters, context: dict[str, Any] | None = None,
                overrides: Mapping[str, Any] | None = None) -> Answer:
        n = checked_n(n, self.config["RECS_MAX_N"])
        self.catalog.refresh()
        bundle = self.bundle()
        settings = self.settings_for(overrides)
        if settings.holdout:
            return self._holdout("for-you", n, filters, bundle, settings, context)
        masked = visitor.user_key is not None and self.is_erased(visitor.user_key)
        try:
            history = VisitorHistory() if masked else load_history(self.engine, visitor)
        except Exception as exc:  # a database outage: this visitor's last answer, if kept
            last = self._last_for_you.get(_last_key(visitor, n, filters, context))
            keep_last_good("for-you", exc, have_copy=last is not None)
            assert last is not None
            return last.copy()
        key = self._for_you_key(bundle, visitor, masked, history, n, filters, context, settings)
        cached = self._for_you_answers.get(key) if key is not None else None
        if cached is not None:
            return cached.copy()
        excluded = set(history.in_cart) | {
            item for item in history.purchased
            if (self.catalog.get(item) is None
                or (self.catalog.get(item).category or "") not in self.rules.repeat_buy_categories)  # type: ignore[union-attr]
        }
        candidates = self._candidates(bundle)
        if bundle is not None and not masked:
            with one_blas_thread():
                self._personal_candidates(candidates, bundle, visitor, history, n,
                                          self.for_you_blend(settings, bundle, visitor),
                                          excluded | filters.exclude)
        category = (context or {}).get("category") or self._recent_category(history)
        answer = self._finish("for-you", candidates, n, filters.excluding(excluded), bundle, category=category,
                              context=context, rules=settings.rules)
        if key is not None:
            self._for_you_answers.put(key, answer.copy())
            self._last_for_you.put(_last_key(visitor, n, filters, context), answer.copy())
        return answer

    def _for_you_key(self, bundle: ModelBundle | None, visitor: Visitor, masked: bool, history: VisitorHistory,
                     n: int, filters: Filters, context: Mapping[str, Any] | None,
                     settings: Settings) -> tuple[Any, ...] | None:
        """The cache key of a for-you answer, or None when it is not cached (no model, or a
        context that cannot be frozen). The visitor is part of it: a cached answer is only
        ever served to whom it was made for."""
        if bundle is None:
            return None
        try:
            frozen_context = frozen(context or {})
        except TypeError:
            return None
        session = (self.config["RECS_SESSION_MINUTES"], self.config["RECS_SESSION_BOOST"])
        return (visitor, masked, history_key(history, self._session_start()), session, n, filters, frozen_context,
                settings.key, *self._state_key(bundle, context or {}))

    def trending(self, n: int, filters: Filters, context: dict[str, Any] | None = None,
                 overrides: Mapping[str, Any] | None = None) -> Answer:
        n = checked_n(n, self.config["RECS_MAX_N"])
        self.catalog.refresh()
        bundle = self.bundle()
        settings = self.settings_for(overrides)
        if settings.holdout:
            return self._holdout("trending", n, filters, bundle, settings, context)
        candidates = self._candidates(bundle)
        if bundle is not None:
            scores = bundle.trending
            top = np.argsort(-scores)[: max(4 * n, 40)]
            candidates.add_indexes(top, weighted(scores[top], 1.0), Reason("trending now", "trending"))
        return self._finish("trending", candidates, n, filters, bundle, context=context, rules=settings.rules)

    def recently_viewed(self, visitor: Visitor, n: int, filters: Filters,
                        overrides: Mapping[str, Any] | None = None) -> Answer:
        n = checked_n(n, self.config["RECS_MAX_N"])
        self.catalog.refresh()
        bundle = self.bundle()
        settings = self.settings_for(overrides)
        if settings.holdout:
            return self._holdout("recently-viewed", n, filters, bundle, settings)
        history = load_history(self.engine, visitor)
        items: list[Recommendation] = []
        viewed = history.viewed(limit=4 * n + 10)
        for rank, item_id in enumerate(viewed):
            item = self.catalog.get(item_id)
            if filters.admits(item) and item is not None:
                items.append(self._recommendation("recently-viewed", item, 1.0 / (rank + 1), Reason("you viewed this", "recently_viewed"),
                                                  "model", len(items), bundle.version if bundle else "-"))
            if len(items) == n:
                break
        return Answer(items, bundle.version if bundle else None, "model")

    def bought_together(self, item_id: str, n: int, filters: Filters,
                        overrides: Mapping[str, Any] | None = None) -> Answer:
        n = checked_n(n, self.config["RECS_MAX_N"])
        self.catalog.refresh()
        bundle = self.bundle()
        settings = self.settings_for(overrides)
        if settings.holdout:
            return self._holdout("bought-together", n, filters.excluding([item_id]), bundle, settings)
        seed = self.catalog.get(item_id)
        candidates = self._candidates(bundle)
        if bundle is not None and item_id in bundle.item_index:
            ids, scores = bundle.bought_together(bundle.item_index[item_id], max(4 * n, 40))
            self._add_ranked(candidates, bundle, ids, scores, 1.0, Reason(
                f"bought together with {self._title(item_id)}", "bought_together_with", item_id))
        return self._finish("bought-together", candidates, n, filters.excluding([item_id]), bundle,
                            category=seed.category if seed else None, seed_item=item_id, rules=settings.rules)

    def _title(self, item_id: str) -> str:
        item = self.catalog.get(item_id)
        return (item.title if item else None) or item_id

    # -- candidates -----------------------------------------------------------------------------
    def _add_ranked(self, candidates: Candidates, bundle: ModelBundle, ids: np.ndarray, scores: np.ndarray,
                    weight: float, reason: str) -> None:
        if weight <= 0 or not len(ids):
            return
        candidates.add_indexes(ids, weighted(scores, weight), reason)

    def _personal_candidates(self, candidates: Candidates, bundle: ModelBundle, visitor: Visitor,
                             history: VisitorHistory, n: int, blend: Mapping[str, float] | None = None,
                             excluded: Iterable[str] = ()) -> None:
        w = self.weights["for_you"] if blend is None else blend
        # Leave out what must not be shown before cutting each source to its top, so a heavy
        # buyer's candidates are not all items they already have.
        skip = [bundle.item_index[i] for i in excluded if i in bundle.item_index]
        depth = max(4 * n, 50)
        user_idx = model_user(bundle, visitor)
        fresh = history.newest() is not None and history.newest() > bundle.created_at  # type: ignore[operator]
        if w.get("als", 0) > 0:
            ids, scores = self._taste(bundle, None if fresh else user_idx, history, depth, skip)
            self._add_ranked(candidates, bundle, ids, scores, w["als"], TASTE)
        if w.get("ease", 0) > 0 and bundle.ease.nnz:
            ids, scores = bundle.recommend_ease(self._interaction_weights(bundle, history)[0], depth, skip, user_idx)
            self._add_ranked(candidates, bundle, ids, scores, w["ease"], TASTE)
        self._plugin_candidates(candidates, bundle, history, depth, skip, w)
        if user_idx is None and history.empty:
            return  # a stranger: the context-aware fallback answers
        if w.get("popularity", 0) > 0:
            top = self._most_popular(bundle)
            top = top[~np.isin(top, skip)][:depth] if skip else top[:depth]
            self._add_ranked(candidates, bundle, top, bundle.popularity[top], w["popularity"], POPULAR)
        # Neighbours of what the visitor just looked at: item-item (strong on sparse shop data),
        # or content neighbours for items without co-interactions (new, or never bought). Seed
        # weights sum to one, so this source weighs ``itemitem`` however many seeds there are.
        seeds = self._seed_items(history)
        seed_total = sum(SEED_DECAY**rank for rank in range(len(seeds))) or 1.0
        for rank, (item_id, verb) in enumerate(seeds):
            weight = w.get("itemitem", 0) * SEED_DECAY**rank / seed_total
            reason = Reason(f"because you {verb} {self._title(item_id)}", f"because_you_{verb}", item_id)
            idx = bundle.item_index.get(item_id)
            ids, scores = (top_of_row(bundle.itemitem.similarity, idx, depth + len(skip)) if idx is not None
                           else (np.zeros(0, np.int64), np.zeros(0, np.float32)))
            if len(ids):
                self._add_ranked(candidates, bundle, ids, scores, weight, reason)
            elif weight > 0:  # no co-interactions yet: its content neighbours stand in
                neighbours, similarity = self._content_neighbours(bundle, item_id, depth)
                candidates.add_ids(neighbours, weighted(similarity, weight), reason)

    def _plugin_neighbours(self, candidates: Candidates, bundle: ModelBundle, idx: int, depth: int,
                           w: Mapping[str, float], reason: str) -> None:
        """Plugin sources with a weight in the similar-items blend: their neighbours of ``idx``."""
        for name, source in bundle.plugin_sources.items():
            if w.get(name, 0) > 0:
                found, scores = (np.asarray(a) for a in source.similar_items(idx, depth + 1))
                keep = (found >= 0) & (found != idx)
                self._add_ranked(candidates, bundle, found[keep][:depth].astype(np.int64),
                                 scores[keep][:depth].astype(np.float32), w[name], reason)

    def _plugin_candidates(self, candidates: Candidates, bundle: ModelBundle, history: VisitorHistory,
                           depth: int, skip: list[int], w: Mapping[str, float]) -> None:
        """Plugin sources with a weight in this blend, scored on the visitor's live events."""
        used = {name: source for name, source in bundle.plugin_sources.items() if w.get(name, 0) > 0}
        if not used:
            return
        items, weights = self._interaction_weights(bundle, history)
        if not items:
            return
        profile = sparse.csr_matrix((weights, ([0] * len(items), items)), shape=(1, len(bundle.item_ids)),
                                    dtype=np.float32)
        for name, source in used.items():
            ids, scores = profile_lists(source, profile, depth + len(skip))
            keep = (ids[0] >= 0) & ~np.isin(ids[0], skip)
            self._add_ranked(candidates, bundle, ids[0][keep][:depth], scores[0][keep][:depth], w[name],
                             Reason(type(source).reason, "your_taste"))

    def _taste(self, bundle: ModelBundle, user_idx: int | None, history: VisitorHistory, depth: int,
               skip: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Top items by the visitor's ALS factors: the trained ones (``user_idx``), else folded in
        from their events. Cached by exactly what they are computed from, so any new event (or
        an event leaving the current session) computes them afresh."""
        if user_idx is not None:
            key: tuple[Any, ...] = ("user", user_idx)
        else:
            items, weights = self._interaction_weights(bundle, history)
            if not items:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            key = ("events", tuple(items), tuple(weights))
        key += (depth, frozenset(skip))
        self._check_caches(bundle)
        found = self._taste_cache.get(key)
        if found is None:
            if user_idx is not None:
                found = bundle.recommend_user(user_idx, depth, filter_items=skip)
            else:
                found = bundle.recommend_vector(bundle.fold_in(items, weights), depth, filter_items=skip)
            for array in found:
                array.setflags(write=False)  # shared by later answers
            self._taste_cache.put(key, found)
        return found

    @staticmethod
    def for_you_blend(settings: Settings, bundle: ModelBundle | None, visitor: Visitor) -> dict[str, float]:
        """The for-you weights: for a visitor the model knows, the ones training chose for this
        shop on such visitors; for a new visitor's session (and without a choice), the configured ones."""
        if (settings.auto_blend and bundle is not None and bundle.blend is not None
                and model_user(bundle, visitor) is not None):
            return bundle.blend
        return settings.weights["for_you"]

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
        session_start = self._session_start()
        boost = float(self.config["RECS_SESSION_BOOST"])
        totals: dict[int, float] = {}
        for item_id, kind, ts in history.events:
            idx = bundle.item_index.get(item_id)
            weight = float(weights.get(kind, 0.0))
            if idx is None or weight <= 0:
                continue
            totals[idx] = totals.get(idx, 0.0) + weight * (boost if ts >= session_start else 1.0)
        return list(totals), list(totals.values())

    def _session_start(self) -> datetime:
        """Events since then are the current session's (counted ``RECS_SESSION_BOOST`` times)."""
        return utcnow() - timedelta(minutes=self.config["RECS_SESSION_MINUTES"])

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
        """Content neighbours among trained items and items added since the training run (cached)."""
        self._check_caches(bundle)
        cached = self._content_cache.get((item_id, n))
        if cached is None:
            cached = self._search_content(bundle, item_id, n)
            self._content_cache.put((item_id, n), cached)
        return cached

    def _search_content(self, bundle: ModelBundle, item_id: str, n: int) -> tuple[list[str], np.ndarray]:
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
                context: dict[str, Any] | None = None, rules: Rules | None = None) -> Answer:
        rules = rules or self.rules
        ranked = self._admitted(candidates, filters)
        if rules.boost or rules.boost_items:  # boosts and burials reorder: score every candidate
            ranked = iter(sorted(((item, rules.adjust(item, score), reason) for item, score, reason in ranked),
                                 key=lambda entry: (-entry[1], entry[0].id)))
        pinned = [self.catalog.get(i) for i in rules.pinned.get(kind, [])]
        pinned_entries = [(item, 1e9, FEATURED) for item in pinned if filters.admits(item) and item is not None]
        pinned_ids = {entry[0].id for entry in pinned_entries}
        ordered = chain(pinned_entries, (entry for entry in ranked if entry[0].id not in pinned_ids))
        chosen = diversify(ordered, n, rules.category_cap(kind, n))
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

    def _admitted(self, candidates: Candidates, filters: Filters) -> Iterator[tuple[CachedItem, float, str]]:
        """Candidates the filters admit, best first; read lazily, so an answer looks at only as
        many candidates as it needs."""
        for item_id, score, reason in candidates.ranked():
            item = self.catalog.get(item_id)
            if item is not None and filters.admits(item):
                yield item, score, reason

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
            take(ids, scores, lambda _: Reason(f"similar to {title}", "similar_to", seed_item))
        ranked = self.popularity.ranked(bundle, self.catalog, context or {})
        if category is not None and len(chosen) < needed:
            in_category = self.popularity.ranked_in_category(bundle, self.catalog, category)
            take(in_category, (0.5 / (r + 1) for r in range(len(in_category))), lambda i: Reason(f"popular in {category}", "popular_in_category"))
        if len(chosen) < needed:
            take(ranked, (0.25 / (r + 1) for r in range(len(ranked))),
                 lambda i: Reason(f"popular in {i.category}", "popular_in_category") if i.category else POPULAR)
        if len(chosen) < needed:
            rest = sorted(self.catalog.items)
            take(rest, (0.0 for _ in rest), lambda _: CATALOGUE)
        return chosen

    def _recommendation(self, kind: str, item: CachedItem, score: float, reason: str, source: str,
                        position: int, version: str) -> Recommendation:
        reason_kind, reason_item_id = reason_parts(reason)
        return Recommendation(
            item_id=item.id, score=score, reason=str(reason), source=source, title=item.title, url=item.url,
            image_url=item.image_url, price=item.price, category=item.category,
            token=self._token(kind, version, position), reason_kind=reason_kind, reason_item_id=reason_item_id,
        )

    def _token(self, kind: str, version: str, position: int) -> str:
        """``kind|model version|position|signature``: says which widget and model showed an
        item, for attribution. Signed once per (kind, version), so it costs nothing per item."""
        signature = self._token_signatures.get((kind, version))
        if signature is None:
            signature = self._signer.get_signature(f"{kind}|{version}").decode()
            self._token_signatures[(kind, version)] = signature
        return f"{kind}|{version}|{position}|{signature}"

