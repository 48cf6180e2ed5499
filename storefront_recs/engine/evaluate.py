"""Offline evaluation: time-split holdout, full-catalogue ranking, NDCG@10, Recall@10/20, coverage.

Protocol: each user's latest distinct items (``RECS_EVAL_HOLDOUT``, at least one) are the test
set (``data.holdout_split``); the model is trained on the rest; every catalogue item the user
did not interact with in training is ranked. Recall@k is hits / min(|test|, k); coverage is the
share of items that appear in at least one top-10 list. The popularity baseline (items ranked
by training-set strength) is scored the same way in the same run.

Ranking is vectorised per block of 128 users: one matrix product scores the whole catalogue, the
user's training items are masked, ``np.argpartition`` finds the top k; two blocks are ranked at
a time in threads (both steps release the GIL), the metrics summed in block order. A scorer with the same
ranking for everyone (popularity) is sorted once and each user skips their seen items.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

KS = (10, 20)
BATCH = 128  # users per block: a block's scores and argpartition indexes are ~30 MB at 20k items (two at a time)
RANK_THREADS = 2  # blocks ranked at the same time


@dataclass(frozen=True)
class Scorer:
    """A model as implicit ranks it: score(user, item) = queries(users) . items.

    ``shared_order``: the item ranking when it is the same for every user (best first).
    """

    items: np.ndarray  # items x f
    queries: Callable[[np.ndarray], np.ndarray]  # user indexes -> users x f
    shared_order: np.ndarray | None = None


@dataclass
class TopLists:
    """Each of some evaluated ``users``' best ``depth`` unseen items and their scores, kept from
    the scores ``evaluate_scorer`` computes anyway (the blend choice reuses them for ALS)."""

    users: np.ndarray  # a subset of the evaluated users
    depth: int
    ids: np.ndarray | None = None  # len(users) x depth, best first
    scores: np.ndarray | None = None  # the same shape; -inf where fewer unseen items

    def lists(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(ids, scores)`` once filled, else None."""
        return None if self.ids is None or self.scores is None else (self.ids, self.scores)


def _row_of_entries(m: sparse.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))


def top_k_scored(scores: np.ndarray, seen: sparse.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` best columns of ``scores`` (modified in place), ``seen`` columns excluded.

    Returns ``(top, valid)``: column indexes best first, and False where a row has fewer than
    ``k`` unseen columns.
    """
    scores[_row_of_entries(seen), seen.indices] = -np.inf
    top, top_scores = _top_scores(scores, k)
    return top, top_scores > -np.inf


def top_k_shared(ranking: np.ndarray, seen: sparse.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's first ``k`` items of one shared ``ranking`` that it has not ``seen``."""
    rows = seen.shape[0]
    width = min(len(ranking), k + int(np.diff(seen.indptr).max(initial=0)))
    head = ranking[:width]
    rank_of = np.full(seen.shape[1], width, dtype=np.int64)
    rank_of[head] = np.arange(width)
    hidden = np.zeros((rows, width + 1), dtype=bool)  # column ``width``: seen beyond the head
    hidden[_row_of_entries(seen), rank_of[seen.indices]] = True
    first = np.argsort(hidden[:, :width], axis=1, kind="stable")[:, :k]
    valid = ~np.take_along_axis(hidden[:, :width], first, axis=1)
    top = head[first]
    if top.shape[1] < k:
        pad = k - top.shape[1]
        top = np.hstack([top, np.zeros((rows, pad), top.dtype)])
        valid = np.hstack([valid, np.zeros((rows, pad), bool)])
    return top, valid


def _top_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` best columns of ``scores`` and their scores, best first."""
    n = scores.shape[1]
    part = np.argpartition(scores, n - k, axis=1)[:, n - k :] if k < n else \
        np.broadcast_to(np.arange(n), scores.shape).copy()
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)


def evaluate_scorer(
    scorer: Scorer, train: sparse.csr_matrix, test: sparse.csr_matrix, users: np.ndarray,
    *, keep: TopLists | None = None,
) -> dict[str, float]:
    """NDCG@10, Recall@10/20 and coverage of one scorer on the given test users.

    Every item is ranked; the user's training items are filtered out. With ``keep`` (a scorer
    without a shared order), its users' top lists are filled in from the same scores.
    """
    n_items = train.shape[1]
    k_max = min(max(KS), n_items)
    if not len(users) or k_max == 0:
        return {"ndcg@10": 0.0, "recall@10": 0.0, "recall@20": 0.0, "coverage": 0.0}
    discounts = 1.0 / np.log2(np.arange(2, k_max + 2))
    k10 = min(10, k_max)
    ideal_by_count = np.concatenate(([1.0], np.cumsum(discounts[:k10])))
    ndcg: list[np.ndarray] = []
    recall: dict[int, list[np.ndarray]] = {k: [] for k in KS}
    shown = np.zeros(n_items, dtype=bool)
    items = np.ascontiguousarray(scorer.items, dtype=np.float32)
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def rank(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
        """A block's top ``k_max`` (and, for a block of kept users, their top lists)."""
        seen = train[batch]
        if scorer.shared_order is not None:
            return *top_k_shared(scorer.shared_order, seen, k_max), None
        scores = np.ascontiguousarray(scorer.queries(batch), dtype=np.float32) @ items.T
        if keep is None or not is_kept[batch[0]]:
            return *top_k_scored(scores, seen, k_max), None
        depth = min(keep.depth, n_items)  # one selection gives both lists
        top, valid = top_k_scored(scores, seen, max(depth, k_max))
        top_scores = np.take_along_axis(scores, top, axis=1)
        return top[:, :k_max], valid[:, :k_max], (batch, top[:, :depth], top_scores[:, :depth])

    # kept users (if any) in blocks of their own, the others after; results go back to ``users``' order
    is_kept = np.zeros(train.shape[0], dtype=bool)
    if keep is not None and scorer.shared_order is None:
        is_kept[keep.users] = True
    in_order = np.concatenate([np.flatnonzero(is_kept[users]), np.flatnonzero(~is_kept[users])])
    batches = [part[start : start + BATCH] for part in np.split(users[in_order], [int(is_kept[users].sum())])
               for start in range(0, len(part), BATCH)]
    # blocks are ranked two at a time: their matrix product and argpartition release the GIL;
    # one BLAS thread each (two each cost a quarter more CPU for no gain)
    with threadpool_limits(1, "blas"), ThreadPoolExecutor(RANK_THREADS, thread_name_prefix="recs-eval") as pool:
        for batch, (top, valid, kept_block) in zip(batches, pool.map(rank, batches), strict=True):
            if kept_block is not None:
                kept.append(kept_block)
            truth = test[batch]
            truth_keys = _row_of_entries(truth).astype(np.int64) * n_items + truth.indices
            top_keys = np.arange(len(batch), dtype=np.int64)[:, np.newaxis] * n_items + top
            hits = np.isin(top_keys, truth_keys) & valid
            n_true = np.diff(truth.indptr)
            shown[top[:, :k10][valid[:, :k10]]] = True
            dcg = (hits[:, :10] * discounts[:k10]).sum(axis=1)
            ndcg.append(dcg / np.maximum(ideal_by_count[np.minimum(n_true, 10)], 1e-12))
            for k in KS:
                recall[k].append(hits[:, :k].sum(axis=1) / np.maximum(np.minimum(n_true, k), 1))
    if keep is not None and kept:
        kept_users = np.concatenate([k[0] for k in kept])
        at = np.searchsorted(kept_users, keep.users, sorter=np.argsort(kept_users))
        by_user = np.argsort(kept_users)[np.minimum(at, len(kept_users) - 1)]
        if not np.array_equal(kept_users[by_user], keep.users):
            raise ValueError("TopLists.users must be a subset of the evaluated users")
        keep.ids = np.concatenate([k[1] for k in kept])[by_user]
        keep.scores = np.concatenate([k[2] for k in kept])[by_user]
    back = np.argsort(in_order)  # the per-user values in ``users``' order (the same sums as always)
    return {
        "ndcg@10": float(np.concatenate(ndcg)[back].mean()),
        "recall@10": float(np.concatenate(recall[10])[back].mean()),
        "recall@20": float(np.concatenate(recall[20])[back].mean()),
        "coverage": float(shown.sum() / n_items),
    }


def holdout_users(test: sparse.csr_matrix, max_users: int, seed: int) -> np.ndarray:
    """Users with held-out items; a seeded sample of ``max_users`` when there are more."""
    users = np.flatnonzero(np.diff(test.indptr))
    if max_users and len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    return users


def factor_scorer(user_factors: np.ndarray, item_factors: np.ndarray) -> Scorer:
    """A factor model: user factors . item factors."""
    return Scorer(item_factors, lambda users: user_factors[users])


def popularity_scorer(train: sparse.csr_matrix) -> Scorer:
    """The popularity baseline: training strength per item, the same for everyone."""
    pop = np.asarray(train.sum(axis=0)).ravel().astype(np.float32)
    return Scorer(pop[:, np.newaxis], lambda users: np.ones((len(users), 1), np.float32),
                  shared_order=np.argsort(-pop, kind="stable"))


def compare(model: dict[str, float], baseline: dict[str, float], prefix: str = "popularity_") -> dict[str, float]:
    """The model's metrics with the baseline's beside them (``popularity_ndcg@10``...)."""
    return {**model, **{prefix + key: value for key, value in baseline.items()}}
