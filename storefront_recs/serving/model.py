"""The serving side of a model bundle: ``ModelBundle`` loads a published bundle (mmapping what
it can) and answers implicit-style ``(ids, scores)`` queries; ``ServingStore`` keeps the one
``CURRENT`` names loaded in each worker and follows it when training publishes a new one."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from implicit.nearest_neighbours import ItemItemRecommender
from scipy import sparse
from threadpoolctl import threadpool_limits

from ..engine import ease as ease_model
from ..engine.ann import NormOrderedIndex, annoy_query, exact_query, load_annoy, row_norms
from ..engine.bundle import MANIFEST, BundleError, BundleStore, file_mtime, load_csr, validate
from ..engine.fitting import ContentModel
from ..plugins import SOURCES, Source, plugin

log = logging.getLogger(__name__)


class ModelBundle:
    """A published bundle, read-only, with implicit-style ``(ids, scores)`` verbs over item indexes."""

    def __init__(self, directory: str, *, ann_mode: str | None = None,
                 plugin_options: Mapping[str, Any] | None = None) -> None:
        self.path = directory
        self.manifest = validate(directory)
        m = self.manifest
        self.version: str = m["version"]
        self.created_at: datetime = datetime.fromisoformat(m["created_at"])
        self.metrics: dict[str, float] = m["metrics"]
        j = lambda name: os.path.join(directory, name)  # noqa: E731
        self.item_ids: list[str] = _load_json(j("item_ids.json"))
        self.user_ids: list[str] = _load_json(j("user_ids.json"))
        self.item_index = {item: i for i, item in enumerate(self.item_ids)}
        self.user_index = {user: i for i, user in enumerate(self.user_ids)}
        self.item_factors: np.ndarray = np.load(j("als_item_factors.npy"))
        self.user_factors: np.ndarray = np.load(j("als_user_factors.npy"), mmap_mode="r")
        params = m.get("params", {}).get("als", {})
        with threadpool_limits(1, "blas"):
            self.als = AlternatingLeastSquares(
                factors=self.item_factors.shape[1], regularization=params.get("regularization", 0.05),
                alpha=params.get("alpha", 1.0), num_threads=1,
            )
        self.als.item_factors, self.als.user_factors = self.item_factors, self.user_factors
        self._item_norms = row_norms(self.item_factors)
        self.itemitem = ItemItemRecommender(num_threads=1)
        self.itemitem.similarity = load_csr(j("itemitem.npz"))
        self.bought_together_matrix = load_csr(j("bought_together.npz"))
        self.ease = load_csr(j("ease.npz")) if "ease.npz" in m["files"] else ease_model.empty(len(self.item_ids))
        self.ease_user_items = load_csr(j("ease_user_items.npz")) if "ease_user_items.npz" in m["files"] else None
        blend = m.get("blend") or {}
        # the for-you blend the training run chose for this shop (None: it did not choose)
        self.blend: dict[str, float] | None = dict(blend["weights"]) if blend.get("chosen") else None
        with np.load(j("content.npz"), allow_pickle=False) as z:
            self.content = ContentModel(_load_json(j("content_item_ids.json")), z["features"], z["idf"],
                                        z["components"], z["vectors"])
        self.content_index = {item: i for i, item in enumerate(self.content.item_ids)}
        self._content_ids = np.array(self.content.item_ids, dtype=object)
        with np.load(j("popularity.npz"), allow_pickle=False) as z:
            self.popularity: np.ndarray = z["popularity"]
            self.trending: np.ndarray = z["trending"]
            self.popularity_by_hour: np.ndarray = z["by_hour"]
            self.popularity_by_weekday: np.ndarray = z["by_weekday"]
        self._check_shapes()
        # candidate sources from plugins, by name (a source whose plugin is gone is left out)
        self.plugin_sources = load_sources(directory, m, plugin_options or {})
        self.ann_mode = ann_mode or m.get("ann_mode", "exact")
        if self.ann_mode == "annoy" and "als_angular.ann" not in m["files"]:
            self.ann_mode = "exact"  # built without Annoy indexes
        if self.ann_mode == "annoy":
            dims = self.item_factors.shape[1]
            self._ann_angular = load_annoy(j("als_angular.ann"), dims, "angular")
            self._ann_content = load_annoy(j("content.ann"), self.content.vectors.shape[1], "angular")

    def _check_shapes(self) -> None:
        n_items, n_users = len(self.item_ids), len(self.user_ids)
        checks = {
            "item factors": self.item_factors.shape[0] == n_items,
            "user factors": self.user_factors.shape[0] == n_users,
            "item-item": self.itemitem.similarity.shape == (n_items, n_items),
            "bought together": self.bought_together_matrix.shape == (n_items, n_items),
            "ease": self.ease.shape == (n_items, n_items),
            "ease users": self.ease_user_items is None or self.ease_user_items.shape[0] == n_users,
            "content vectors": self.content.vectors.shape[0] == len(self.content.item_ids),
            "popularity": self.popularity.shape == (n_items,) and self.trending.shape == (n_items,),
            "hourly popularity": self.popularity_by_hour.shape == (24, n_items),
            "weekday popularity": self.popularity_by_weekday.shape == (7, n_items),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise BundleError(f"bundle {self.version}: shapes do not match the vocabularies: {bad}")

    def __repr__(self) -> str:
        return f"<ModelBundle {self.version} items={len(self.item_ids)} users={len(self.user_ids)}>"

    # -- ALS ------------------------------------------------------------------------------------
    def recommend_user(
        self, user_idx: int, n: int, filter_items: np.ndarray | list[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` items for a known user by dot product of factors, minus ``filter_items``."""
        return self.recommend_vector(self.user_factors[user_idx], n, filter_items)

    def recommend_vector(
        self, user_vector: np.ndarray, n: int, filter_items: np.ndarray | list[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` items for a user vector (from ``fold_in``), minus ``filter_items``."""
        exclude = () if filter_items is None else filter_items
        # Exact in every mode: on ALS factors the norm-ordered scan beat Annoy's dot index at
        # every recall and catalogue size measured (bench/ann.py, docs/benchmarks.md).
        return self._exact_dot.query(user_vector, n, exclude)

    @cached_property
    def _exact_dot(self) -> NormOrderedIndex:
        return NormOrderedIndex(self.item_factors)

    def fold_in(self, item_idxs: np.ndarray | list[int], weights: np.ndarray | list[float]) -> np.ndarray:
        """A user vector from interactions (implicit's ``recalculate_user``), for any visitor."""
        idx = np.asarray(item_idxs, dtype=np.int32)
        w = np.asarray(weights, dtype=np.float32)
        # Built from CSR arrays directly: going through COO costs more than the solve itself.
        row = sparse.csr_matrix((w, idx, np.array([0, len(idx)], np.int32)), shape=(1, len(self.item_ids)))
        row.sum_duplicates()
        return np.asarray(self.als.recalculate_user(0, row), dtype=np.float32)

    def similar_als(self, item_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Items closest to ``item_idx`` by cosine of ALS factors (the item itself excluded)."""
        if self.ann_mode == "annoy":
            return annoy_query(self._ann_angular, self.item_factors[item_idx], n, "angular", [item_idx])
        query = self.item_factors[item_idx] / self._item_norms[item_idx]
        return exact_query(self.item_factors, query, n, norms=self._item_norms, exclude=[item_idx])

    def recommend_ease(self, item_idxs: list[int], n: int, filter_items: list[int] | None = None,
                       user_idx: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` items by EASE for a visitor with these items (and not ``filter_items``); a
        user the model knows (``user_idx``) also with every item they had in training: serving
        reads only a visitor's latest events, and EASE, unlike the ALS user factors, has no
        summary of the rest (on the quality benchmark's validation split the whole history
        ranked better than the latest 200 events, bench/blend_validation.py)."""
        items = np.unique(np.asarray(item_idxs, dtype=np.int64))
        known = self.ease_user_items
        if user_idx is not None and known is not None and user_idx < known.shape[0]:
            items = np.union1d(items, known.indices[known.indptr[user_idx] : known.indptr[user_idx + 1]])
        if not self.ease.nnz or not len(items):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        scores = ease_model.user_scores(self.ease, items)
        candidates = np.flatnonzero(scores > 0)
        if filter_items:
            candidates = candidates[~np.isin(candidates, filter_items)]
        top = candidates[np.argsort(-scores[candidates], kind="stable")[:n]]
        return top.astype(np.int64), scores[top].astype(np.float32)

    # -- item-item, bought together -------------------------------------------------------------
    def similar_itemitem(self, item_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine item-item neighbours from co-interactions (implicit's ``similar_items``)."""
        ids, scores = self.itemitem.similar_items(item_idx, N=n, filter_items=np.array([item_idx]))
        return np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float32)

    def bought_together(self, item_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Items carted or bought in the same session or order, best first."""
        m = self.bought_together_matrix
        start, end = m.indptr[item_idx], m.indptr[item_idx + 1]
        ids, scores = m.indices[start:end], m.data[start:end]
        order = np.argsort(-scores, kind="stable")[:n]
        return ids[order].astype(np.int64), scores[order].astype(np.float32)

    # -- content --------------------------------------------------------------------------------
    def content_vector(self, item: dict[str, Any]) -> np.ndarray:
        """The content vector of any item dict (title, description, category, attributes)."""
        return self.content.embed([item])[0]

    def similar_content(self, item_id: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Catalogue items (ids) closest in content to ``item_id`` (itself excluded)."""
        row = self.content_index.get(item_id)
        if row is None:
            return np.zeros(0, dtype=object), np.zeros(0, np.float32)
        return self._content_search(self.content.vectors[row], n, [row])

    def similar_content_vector(self, vec: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Catalogue items (ids) closest to a content vector."""
        return self._content_search(vec, n, [])

    def _content_search(self, vec: np.ndarray, n: int, exclude: list[int]) -> tuple[np.ndarray, np.ndarray]:
        if not len(self.content.item_ids) or not np.any(vec):
            return np.zeros(0, dtype=object), np.zeros(0, np.float32)
        if self.ann_mode == "annoy":
            rows, scores = annoy_query(self._ann_content, vec, n, "angular", exclude)
        else:
            rows, scores = exact_query(self.content.vectors, vec, n, exclude=exclude)
        return self._content_ids[rows], scores


def _load_json(path: str) -> Any:
    with open(path) as handle:
        return json.load(handle)


class ServingStore(BundleStore):
    """The bundle store as a worker reads it: ``current()`` is what every worker serves."""

    def __init__(self, model_dir: str, *, ann_mode: str | None = None, check_interval: float = 1.0,
                 plugin_options: Mapping[str, Any] | None = None) -> None:
        super().__init__(model_dir, ann_mode=ann_mode)
        self.plugin_options = dict(plugin_options or {})
        self.check_interval = check_interval
        self._bundle: ModelBundle | None = None
        self._checked_at = -1e9
        self._failed: tuple[str, int | None] | None = None  # a refused version and its manifest's mtime
        self._load_lock = threading.Lock()

    def current(self) -> ModelBundle | None:
        """The serving bundle; re-checks the pointer at most once per ``check_interval`` seconds.

        A bundle that fails validation is logged and skipped: the previous one keeps serving.
        Only one thread loads; the others keep answering from the previous bundle meanwhile.
        """
        now = time.monotonic()
        if now - self._checked_at < self.check_interval:
            return self._bundle
        if not self._load_lock.acquire(blocking=self._bundle is None):
            return self._bundle
        try:
            if time.monotonic() - self._checked_at >= self.check_interval:
                self._refresh()
                self._checked_at = time.monotonic()
        finally:
            self._load_lock.release()
        return self._bundle

    def _refresh(self) -> None:
        version = self.pointer()
        if version is None:
            return
        if self._bundle is not None and self._bundle.version == version:
            return
        # a refused bundle is tried again once its manifest changes (an erasure rewrote it)
        stamp = (version, file_mtime(os.path.join(self.model_dir, version, MANIFEST)))
        if stamp == self._failed:
            return
        try:
            self._bundle = ModelBundle(os.path.join(self.model_dir, version), ann_mode=self.ann_mode,
                                       plugin_options=self.plugin_options)
            self._failed = None
        except Exception as exc:  # keep serving the previous bundle, whatever went wrong
            log.error("storefront-recs: refusing model bundle %s: %s", version, exc)
            self._failed = stamp

    def load(self, version: str) -> ModelBundle:
        """Load and validate one bundle (raises :class:`BundleError`)."""
        return ModelBundle(os.path.join(self.model_dir, version), ann_mode=self.ann_mode,
                                       plugin_options=self.plugin_options)


def load_sources(bundle_dir: str, manifest: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Source]:
    """The bundle's plugin sources; one whose plugin is gone or fails to load is left out
    (logged): the rest of the bundle still serves."""
    loaded = {}
    for name, entry in (manifest.get("sources") or {}).items():
        try:
            cls = plugin(SOURCES, name)
            loaded[name] = cls.load(os.path.join(bundle_dir, entry["directory"]), options)
        except Exception as exc:
            log.warning("storefront-recs: source %r of bundle %s is not served: %s", name,
                        manifest.get("version"), exc)
    return loaded
