"""Content vectors of items added to the catalogue after the serving bundle was trained.

They get neighbours (and appear as neighbours) at once, without waiting for a retrain.
Rebuilt when the bundle or the catalogue changes; typically a handful of items.
"""

from __future__ import annotations

import threading

import numpy as np

from .catalog_cache import CatalogCache
from .model import ModelBundle


class NewItemVectors:
    def __init__(self, ids: list[str], vectors: np.ndarray) -> None:
        self.ids = ids
        self.rows = {item_id: row for row, item_id in enumerate(ids)}
        self.vectors = vectors

    def vector(self, item_id: str) -> np.ndarray | None:
        row = self.rows.get(item_id)
        return None if row is None else self.vectors[row]

    def nearest(self, vector: np.ndarray, n: int, exclude: str | None = None) -> list[tuple[str, float]]:
        if not self.ids:
            return []
        scores = self.vectors @ vector
        order = np.argsort(-scores)[: n + 1]
        return [(self.ids[i], float(scores[i])) for i in order if self.ids[i] != exclude][:n]


class NewItems:
    """Caches :class:`NewItemVectors` per (bundle version, catalogue version)."""

    def __init__(self) -> None:
        self._key: tuple[str, int] | None = None
        self._value = NewItemVectors([], np.zeros((0, 1), np.float32))
        self._lock = threading.Lock()

    def get(self, bundle: ModelBundle, catalog: CatalogCache) -> NewItemVectors:
        key = (bundle.version, catalog.version)
        if key == self._key:
            return self._value
        with self._lock:
            if key != self._key:
                items = [item for item_id, item in catalog.items.items()
                         if item.available and item_id not in bundle.content_index]
                if items:
                    vectors = np.asarray(bundle.content.embed([item.text for item in items]), dtype=np.float32)
                    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
                    vectors = (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
                else:
                    vectors = np.zeros((0, 1), np.float32)
                ids = [item.id for item in items]
                if key[0] != (self._key or ("",))[0] or ids != self._value.ids:
                    # A new object only when the set changes: callers key caches on its identity.
                    self._value = NewItemVectors(ids, vectors)
                else:
                    self._value.vectors = vectors  # same items, maybe edited text
                self._key = key
        return self._value
