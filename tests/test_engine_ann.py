"""The norm-ordered exact search answers what a full scan answers."""

from __future__ import annotations

import numpy as np

from storefront_recs.engine.ann import NormOrderedIndex, exact_query


def test_norm_ordered_search_equals_a_full_scan() -> None:
    rng = np.random.default_rng(3)
    # Norms falling steeply (popular items first, a long tail, items without factors), as ALS gives.
    vectors = rng.standard_normal((6000, 16)).astype(np.float32) * (rng.pareto(1.5, 6000)[:, None] + 0.01)
    vectors[rng.random(6000) < 0.4] = 0
    index = NormOrderedIndex(vectors)
    index.FIRST_BLOCK = 64  # small blocks, so that the scan stops early here too
    for trial in range(200):
        query = vectors[rng.integers(0, 6000)] + rng.standard_normal(16).astype(np.float32) * 0.1
        exclude = rng.integers(0, 6000, trial % 20).tolist()
        n = int(rng.choice([1, 10, 50, 300]))
        expected_ids, expected_scores = exact_query(vectors, query, n, exclude=exclude)
        ids, scores = index.query(query, n, exclude)
        assert len(ids) == len(expected_ids)
        assert not set(ids.tolist()) & set(exclude)
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)
        assert np.all(np.diff(scores) <= 0)
        np.testing.assert_allclose(vectors[ids] @ query, scores, rtol=1e-5, atol=1e-5)


def test_norm_ordered_search_of_a_tiny_catalogue() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]], dtype=np.float32)
    ids, scores = NormOrderedIndex(vectors).query(np.array([1.0, 1.0]), 5, exclude=[1])
    assert ids.tolist() == [0, 2]
    assert scores.tolist() == [1.0, 0.0]
