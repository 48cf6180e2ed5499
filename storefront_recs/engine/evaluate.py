"""Offline evaluation: time-split holdout, full-catalogue ranking, NDCG@10, Recall@10/20, coverage.

Protocol: each user's latest distinct items (``RECS_EVAL_HOLDOUT``, at least one) are the test
set (``data.holdout_split``); the model is trained on the rest; every catalogue item the user
did not interact with in training is ranked. Recall@k is hits / min(|test|, k); coverage is the
share of items that appear in at least one top-10 list. The popularity baseline (items ranked
by training-set strength) is scored the same way in the same run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from implicit.cpu.topk import topk
from scipy import sparse

KS = (10, 20)
BATCH = 512



@dataclass(frozen=True)
class Scorer:
    """A model as implicit ranks it: score(user, item) = queries(users) . items."""

    items: np.ndarray  # items x f
    queries: Callable[[np.ndarray], np.ndarray]  # user indexes -> users x f


def evaluate_scorer(
    scorer: Scorer, train: sparse.csr_matrix, test: sparse.csr_matrix, users: np.ndarray
) -> dict[str, float]:
    """NDCG@10, Recall@10/20 and coverage of one scorer on the given test users.

    Ranking uses implicit's ``topk`` with the user's training items filtered out.
    """
    n_items = train.shape[1]
    k_max = min(max(KS), n_items)
    if not len(users) or k_max == 0:
        return {"ndcg@10": 0.0, "recall@10": 0.0, "recall@20": 0.0, "coverage": 0.0}
    discounts = 1.0 / np.log2(np.arange(2, k_max + 2))
    ndcg: list[np.ndarray] = []
    recall: dict[int, list[np.ndarray]] = {k: [] for k in KS}
    shown = np.zeros(n_items, dtype=bool)
    items = np.ascontiguousarray(scorer.items, dtype=np.float32)
    for start in range(0, len(users), BATCH):
        batch = users[start : start + BATCH]
        query = np.ascontiguousarray(scorer.queries(batch), dtype=np.float32)
        top, _ = topk(items, query, k_max, filter_query_items=train[batch])
        valid = top >= 0
        top = np.where(valid, top, 0)
        truth = test[batch]
        hits = np.take_along_axis(truth.toarray() > 0, top, axis=1) & valid
        n_true = np.diff(truth.indptr)
        shown[top[:, : min(10, k_max)][valid[:, : min(10, k_max)]]] = True
        dcg = (hits[:, :10] * discounts[: min(10, k_max)]).sum(axis=1)
        ideal = np.array([discounts[: min(t, 10)].sum() for t in n_true])
        ndcg.append(dcg / np.maximum(ideal, 1e-12))
        for k in KS:
            recall[k].append(hits[:, :k].sum(axis=1) / np.maximum(np.minimum(n_true, k), 1))
    return {
        "ndcg@10": float(np.concatenate(ndcg).mean()),
        "recall@10": float(np.concatenate(recall[10]).mean()),
        "recall@20": float(np.concatenate(recall[20]).mean()),
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
    return Scorer(pop[:, np.newaxis], lambda users: np.ones((len(users), 1), np.float32))


def compare(model: dict[str, float], baseline: dict[str, float], prefix: str = "popularity_") -> dict[str, float]:
    """The model's metrics with the baseline's beside them (``popularity_ndcg@10``...)."""
    return {**model, **{prefix + key: value for key, value in baseline.items()}}
