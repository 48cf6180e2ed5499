"""Evaluation: vectorised full-catalogue ranking agrees with a per-user brute force.

The factors lie on an exact grid (``exact_scores``), so the evaluation's blocks of users and the
brute force's products give the same float32 scores on any CPU and BLAS kernel.
"""

from __future__ import annotations

import numpy as np
import pytest
from exact_scores import assert_no_ties_at_the_top, assert_top_list, on_exact_grid
from scipy import sparse

from storefront_recs.engine.evaluate import (
    KS,
    TopLists,
    evaluate_scorer,
    factor_scorer,
    holdout_users,
    popularity_scorer,
)


def brute_force(scores: np.ndarray, train: sparse.csr_matrix, test: sparse.csr_matrix,
                users: np.ndarray) -> dict[str, float]:
    """The metrics one user at a time: sort every unseen item by score."""
    ndcg, recall, shown = [], {k: [] for k in KS}, set()
    for u in users:
        seen = set(train[u].indices.tolist())
        truth = set(test[u].indices.tolist())
        ranked = [i for i in np.argsort(-scores[u], kind="stable") if i not in seen][: max(KS)]
        shown.update(ranked[:10])
        gains = [1.0 / np.log2(r + 2) for r, i in enumerate(ranked[:10]) if i in truth]
        ideal = sum(1.0 / np.log2(r + 2) for r in range(min(len(truth), 10)))
        ndcg.append(sum(gains) / ideal)
        for k in KS:
            recall[k].append(len(truth & set(ranked[:k])) / min(len(truth), k))
    return {"ndcg@10": float(np.mean(ndcg)), "recall@10": float(np.mean(recall[10])),
            "recall@20": float(np.mean(recall[20])), "coverage": len(shown) / scores.shape[1]}


@pytest.mark.parametrize("n_items", [15, 300])  # fewer items than k, and many
def test_metrics_match_a_brute_force_ranking(n_items: int) -> None:
    rng = np.random.default_rng(3)
    n_users = 1500  # more than one block of users
    train = sparse.random(n_users, n_items, density=0.05, format="csr", random_state=1, dtype=np.float32)
    train.data[:] = rng.random(train.nnz).astype(np.float32) + 0.1
    test = sparse.random(n_users, n_items, density=0.02, format="csr", random_state=2, dtype=np.float32)
    test = (test - test.multiply(train > 0)).tocsr()  # held-out items are not in training
    test.eliminate_zeros()
    test.data[:] = 1.0
    users = holdout_users(test, 0, seed=0)
    user_f, item_f = on_exact_grid(rng.uniform(-1, 1, (n_users, 8)), rng.uniform(-1, 1, (n_items, 8)))
    scores = user_f @ item_f.T
    for u in users:  # one correct ranking of each user's best items, whatever the selection
        assert_no_ties_at_the_top(scores[u], train[u].indices, max(KS) + 1)
    ours = evaluate_scorer(factor_scorer(user_f, item_f), train, test, users)
    assert ours == pytest.approx(brute_force(scores, train, test, users))
    pop = np.asarray(train.sum(axis=0)).ravel()
    baseline = evaluate_scorer(popularity_scorer(train), train, test, users)
    assert baseline == pytest.approx(brute_force(np.tile(pop, (n_users, 1)), train, test, users))
    assert ours["ndcg@10"] != baseline["ndcg@10"]


@pytest.mark.parametrize("n_items", [15, 300])
def test_kept_top_lists_leave_the_metrics_alone_and_match_a_brute_force_ranking(n_items: int) -> None:
    rng = np.random.default_rng(5)
    n_users = 900
    train = sparse.random(n_users, n_items, density=0.05, format="csr", random_state=4, dtype=np.float32)
    test = sparse.random(n_users, n_items, density=0.02, format="csr", random_state=6, dtype=np.float32)
    test = (test - test.multiply(train > 0)).tocsr()
    test.eliminate_zeros()
    test.data[:] = 1.0
    users = rng.permutation(holdout_users(test, 0, seed=0))  # in no particular order
    user_f, item_f = on_exact_grid(rng.uniform(-1, 1, (n_users, 8)), rng.uniform(-1, 1, (n_items, 8)))
    scores = user_f @ item_f.T
    for u in users:  # kept (25 deep) or not (20), users get the same top 20
        assert_no_ties_at_the_top(scores[u], train[u].indices, max(KS) + 1)
    plain = evaluate_scorer(factor_scorer(user_f, item_f), train, test, users)
    n_kept = len(users) // 2  # blocks of kept users and blocks of others
    kept = TopLists(np.sort(rng.choice(users, n_kept, replace=False)), depth=25)
    assert evaluate_scorer(factor_scorer(user_f, item_f), train, test, users, keep=kept) == plain
    assert kept.ids is not None and kept.scores is not None
    assert kept.ids.shape == (n_kept, min(25, n_items))
    for user, ids, top in zip(kept.users, kept.ids, kept.scores, strict=True):
        seen = train[user].indices
        valid = top > -np.inf
        assert_top_list(ids[valid], top[valid], user_f[user] @ item_f.T, seen)  # one user's own product
        assert int(valid.sum()) == min(25, n_items - len(seen))


def test_users_are_a_seeded_sample_above_the_limit() -> None:
    test = sparse.random(500, 50, density=0.1, format="csr", random_state=0)
    everyone = holdout_users(test, 0, seed=1)
    sample = holdout_users(test, 100, seed=1)
    assert len(sample) == 100 and set(sample) <= set(everyone)
    assert np.array_equal(sample, holdout_users(test, 100, seed=1))
