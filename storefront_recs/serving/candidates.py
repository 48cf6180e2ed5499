"""Candidate items from several sources, blended with numpy; and a small LRU for cached blends.

Sources append whole arrays (item indexes or ids, weighted scores, one reason per source); the
per-item sums and reasons are worked out once, when the blend is read. The result is the one a
dict summing source by source gives: scores added in the order the sources came, and the first
specific reason ("because you viewed X") kept over a generic one ("popular right now").
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from typing import Generic, TypeVar

import numpy as np

GENERIC_REASONS = frozenset({"picked for your taste", "popular right now"})

Entry = tuple[str, float, str]  # item id, blended score, reason


class Candidates(Mapping[str, tuple[float, str]]):
    """Blended candidates; reads as ``{item id: (score, reason)}``, and :meth:`ranked` gives them
    best first. ``vocabulary`` (the model's item ids) lets sources add item indexes directly."""

    def __init__(self, vocabulary: Sequence[str] = (), index: Mapping[str, int] | None = None) -> None:
        self._vocabulary = vocabulary
        self._index = index or {}
        self._other: dict[str, int] = {}  # ids outside the vocabulary (new items) -> key
        self._other_ids: list[str] = []
        self._keys: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []
        self._reasons: list[str] = []
        self._resolved: tuple[list[int], list[float], list[str]] | None = None
        self._by_id: dict[str, tuple[float, str]] | None = None

    def add_indexes(self, indexes: np.ndarray, scores: np.ndarray, reason: str) -> None:
        """Add scores of model items (indexes into ``vocabulary``)."""
        self._append(np.asarray(indexes, dtype=np.int64), scores, reason)

    def add_ids(self, item_ids: Sequence[str], scores: np.ndarray, reason: str) -> None:
        """Add scores of items by id (content neighbours, which may be new items)."""
        keys = np.fromiter((self._key(i) for i in item_ids), dtype=np.int64, count=len(item_ids))
        self._append(keys, scores, reason)

    def _key(self, item_id: str) -> int:
        found = self._index.get(item_id)
        if found is not None:
            return found
        key = self._other.get(item_id)
        if key is None:
            key = self._other[item_id] = len(self._vocabulary) + len(self._other_ids)
            self._other_ids.append(item_id)
        return key

    def _append(self, keys: np.ndarray, scores: np.ndarray, reason: str) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        keep = scores > 0  # a source without an opinion on an item adds nothing, not even a reason
        if not keep.all():
            keys, scores = keys[keep], scores[keep]
        if len(keys):
            self._keys.append(keys)
            self._scores.append(scores)
            self._reasons.append(reason)
            self._resolved = self._by_id = None

    def ranked(self) -> Iterator[Entry]:
        """``(item id, score, reason)`` by score, best first (ties by item id). Lazy: an answer
        that needs ten items builds ten entries, however many candidates there are."""
        keys, totals, reasons = self.resolve()
        i, count = 0, len(keys)
        while i < count:
            j = i + 1
            while j < count and totals[j] == totals[i]:
                j += 1
            if j == i + 1:
                yield self._name(keys[i]), totals[i], reasons[i]
            else:
                yield from sorted(((self._name(keys[k]), totals[k], reasons[k]) for k in range(i, j)),
                                  key=lambda entry: entry[0])
            i = j

    def _name(self, key: int) -> str:
        base = len(self._vocabulary)
        return self._vocabulary[key] if key < base else self._other_ids[key - base]

    def resolve(self) -> tuple[list[int], list[float], list[str]]:
        """Keys, summed scores and reasons, by score (best first); worked out once."""
        if self._resolved is None:
            self._resolved = self._resolve()
        return self._resolved

    def _resolve(self) -> tuple[list[int], list[float], list[str]]:
        if not self._keys:
            return [], [], []
        keys = np.concatenate(self._keys)
        scores = np.concatenate(self._scores)
        source = np.repeat(np.arange(len(self._keys)), [len(k) for k in self._keys])
        generic = np.array([r in GENERIC_REASONS for r in self._reasons])[source]
        # By item, specific reasons first, then in the order added (lexsort is stable): each
        # item's first entry carries its reason, the first specific one if there is one.
        order = np.lexsort((generic, keys))
        starts = np.r_[True, keys[order][1:] != keys[order][:-1]]
        group = np.empty(len(keys), np.int64)
        group[order] = np.cumsum(starts) - 1
        totals = np.bincount(group, weights=scores)  # summed in the order the sources came
        first = order[starts]
        unique, reasons = keys[first], source[first]
        best = np.argsort(-totals, kind="stable")
        return (unique[best].tolist(), totals[best].tolist(),
                [self._reasons[r] for r in reasons[best].tolist()])

    def _mapping(self) -> dict[str, tuple[float, str]]:
        if self._by_id is None:
            self._by_id = {item_id: (score, reason) for item_id, score, reason in self.ranked()}
        return self._by_id

    def __getitem__(self, item_id: str) -> tuple[float, str]:
        return self._mapping()[item_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())


K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A bounded, thread-safe least-recently-used cache."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
