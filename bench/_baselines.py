"""Protocol and baselines of ``bench/quality.py``: time split, metrics, popularity, ALS, BM25, EASE.

Everything here works on integer-coded events (``users``, ``items`` as indexes, ``ts`` in
seconds) and produces ranked top-k lists, so that every model, ours included (which answers
with lists of item ids through ``for_you``), is scored by the same function.

- ``time_split``: per user, distinct items ordered by first interaction time; the latest
  ``fraction`` (``max(1, floor(fraction * n))``, users with >= 2 items) is held out. Items
  first seen at the same moment (one basket, one rating session) are ordered by a seeded
  random draw, not by id: an id order put the postage line (``POST``, last in the id order)
  and the newest stock codes of a shopper's last basket into the test set every time.
- ``score_lists``: NDCG@10 (binary gain, ideal over ``min(|test|, 10)``), Recall@k as
  hits / min(|test|, k) (the engine's definition), coverage = share of the catalogue in at
  least one top-10 list.
- baselines (all fitted on the binary training matrix, full-catalogue ranking with each
  user's training items excluded): popularity (distinct training users per item), raw
  ``implicit`` ALS with its defaults, ``implicit``'s BM25 item-kNN (K=100), EASE (numpy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

K_MAX = 20
BATCH = 256


def time_split(users: np.ndarray, items: np.ndarray, ts: np.ndarray, n_users: int, n_items: int,
               fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """True for every event of a held-out (user, item) pair."""
    cell = users.astype(np.int64) * n_items + items
    uniq, inv = np.unique(cell, return_inverse=True)
    first = np.full(len(uniq), np.inf)
    np.minimum.at(first, inv, ts)
    cu = uniq // n_items
    tie = np.random.default_rng(seed).permutation(len(uniq))  # ties in time: a seeded draw
    order = np.lexsort((tie, first, cu))  # by user, then first time (deterministic)
    counts = np.bincount(cu, minlength=n_users)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pos = np.arange(len(order)) - starts[cu[order]]
    n = counts[cu[order]]
    n_test = np.where(n >= 2, np.maximum(1, np.floor(n * fraction)), 0)
    cell_test = np.zeros(len(uniq), dtype=bool)
    cell_test[order] = pos >= n - n_test
    return cell_test[inv]


def binary_matrix(users: np.ndarray, items: np.ndarray, shape: tuple[int, int]) -> sparse.csr_matrix:
    m = sparse.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=shape)
    m.data[:] = 1.0  # duplicates summed: back to 1
    return m


def score_lists(lists: Mapping[int, Sequence[int]], test: dict[int, set[int]], n_catalogue: int) -> dict[str, Any]:
    """NDCG@10, Recall@10, Recall@20 and coverage of top lists (user -> ranked item indexes), and
    each test user's NDCG@10 (in ``test``'s order) for paired comparisons between models."""
    discounts = 1.0 / np.log2(np.arange(2, K_MAX + 2))
    ndcg, r10, r20 = [], [], []
    shown: set[int] = set()
    for user, truth in test.items():
        top = list(lists.get(user, []))[:K_MAX]
        hits = np.array([item in truth for item in top] + [False] * (K_MAX - len(top)))
        ideal = discounts[: min(len(truth), 10)].sum()
        ndcg.append(float((hits[:10] * discounts[:10]).sum() / ideal))
        r10.append(hits[:10].sum() / min(len(truth), 10))
        r20.append(hits[:20].sum() / min(len(truth), 20))
        shown.update(top[:10])
    return {"ndcg@10": float(np.mean(ndcg)), "recall@10": float(np.mean(r10)),
            "recall@20": float(np.mean(r20)), "coverage": len(shown) / n_catalogue,
            "ndcg_per_user": np.asarray(ndcg)}


def paired_gap(ours: np.ndarray, baseline: np.ndarray) -> tuple[float, float]:
    """Mean per-user NDCG difference and its standard error (same test users, same order)."""
    diff = ours - baseline
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0


def top_from_scores(score: Callable[[np.ndarray], np.ndarray], train: sparse.csr_matrix,
                    users: np.ndarray) -> dict[int, list[int]]:
    """Top-20 lists from a dense scorer (users -> users x items), training items excluded."""
    out: dict[int, list[int]] = {}
    for start in range(0, len(users), BATCH):
        batch = users[start:start + BATCH]
        scores = np.array(score(batch), dtype=np.float32, copy=True)
        seen = train[batch].tocoo()
        scores[seen.row, seen.col] = -np.inf
        top = np.argpartition(-scores, K_MAX - 1, axis=1)[:, :K_MAX]
        top_scores = np.take_along_axis(scores, top, axis=1)
        top = np.take_along_axis(top, np.lexsort((top, -top_scores), axis=1), axis=1)
        for row, user in enumerate(batch):
            out[int(user)] = [int(i) for i in top[row]]
    return out


def popularity(train: sparse.csr_matrix, users: np.ndarray) -> dict[int, list[int]]:
    pop = np.asarray(train.sum(axis=0)).ravel().astype(np.float32)
    return top_from_scores(lambda batch: np.broadcast_to(pop, (len(batch), len(pop))), train, users)


def _implicit_lists(model: object, train: sparse.csr_matrix, users: np.ndarray) -> dict[int, list[int]]:
    ids, _ = model.recommend(users, train[users], N=K_MAX, filter_already_liked_items=True)  # type: ignore[attr-defined]
    return {int(u): [int(i) for i in row if i >= 0] for u, row in zip(users, ids, strict=True)}


def implicit_als(train: sparse.csr_matrix, users: np.ndarray, seed: int = 42) -> dict[int, list[int]]:
    """Raw ``implicit`` ALS with the library's defaults (factors 100, reg 0.01, alpha 1, 15 it.)."""
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(random_state=seed)
    with threadpool_limits(1, "blas"):
        model.fit(train, show_progress=False)
    return _implicit_lists(model, train, users)


def implicit_bm25(train: sparse.csr_matrix, users: np.ndarray, k: int = 100) -> dict[int, list[int]]:
    """``implicit``'s BM25-weighted item-item recommender (K neighbours)."""
    from implicit.nearest_neighbours import BM25Recommender

    model = BM25Recommender(K=k)
    model.fit(train, show_progress=False)
    return _implicit_lists(model, train, users)


def ease(train: sparse.csr_matrix, users: np.ndarray, lam: float) -> dict[int, list[int]]:
    """EASE (Steck 2019): B = I - P diag(1/diag P), P = (X'X + lambda I)^-1, zero diagonal.

    Only items with training interactions take part (an item without any has a zero column in
    B, so leaving it out changes no score); float32 to keep a 9k x 9k inverse cheap.
    """
    active = np.flatnonzero(np.diff(train.tocsc().indptr))
    x = train[:, active].astype(np.float32)
    gram = (x.T @ x).toarray()
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = p / (-np.diag(p))
    b[np.diag_indices_from(b)] = 0.0
    n_items = train.shape[1]

    def score(batch: np.ndarray) -> np.ndarray:
        full = np.full((len(batch), n_items), -1e9, dtype=np.float32)
        full[:, active] = x[batch] @ b
        return full

    return top_from_scores(score, train, users)
