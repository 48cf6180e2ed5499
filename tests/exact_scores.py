"""Float32 scores that every computation path gives bit for bit, and top lists checked with ties resolved.

A BLAS kernel sums a dot product in an order of its own: it depends on the CPU (OpenBLAS picks
a kernel per processor), on the block of rows multiplied at once and on matrix-vector versus
matrix-matrix products. The same float32 factors so give scores a few units in the last place
apart on two paths, and near-ties swap places (on an AMD EPYC with OpenBLAS's Haswell kernel a
user's scores change with the block of 128 users it is ranked in). Factors rounded to a coarse
binary grid make every product and every partial sum exact in float32, so any two paths agree
exactly. What remains are exact ties, whose order no top-k selection defines: the checks here
compare scores position by position and ids only up to the order of equal scores.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

FLOAT32_BITS = 24  # significand bits: integers up to 2**24 are exact


def on_exact_grid(*factors: np.ndarray) -> tuple[np.ndarray, ...]:
    """``factors`` (matrices of one width) rounded to the finest grid of multiples of ``2**-bits``
    on which every dot product of two of their rows is exact in float32, in any summation order."""
    width = factors[0].shape[1]
    largest = max(float(np.abs(f).max(initial=0.0)) for f in factors) or 1.0
    # a product is a multiple of 2**(-2 bits) and every partial sum stays below width * largest**2
    bits = int(np.floor((FLOAT32_BITS - np.log2(width * largest**2)) / 2))
    while True:
        assert bits > -20, "values too large for exact float32 sums"
        scale = float(2.0**bits)
        out = tuple((np.round(np.asarray(f, np.float64) * scale) / scale).astype(np.float32) for f in factors)
        rounded = max(float(np.abs(f).max(initial=0.0)) for f in out)
        if width * (rounded * scale) ** 2 < 2**FLOAT32_BITS:  # rounding up may need one bit less
            return out
        bits -= 1


def assert_top_list(ids: np.ndarray, scores: np.ndarray, row_scores: np.ndarray, excluded: Iterable[int]) -> None:
    """``ids`` and ``scores`` (best first) are the ``len(ids)`` best items by ``row_scores`` (every
    item's exact score) leaving out ``excluded``: each id's own score, no id twice or excluded, and
    the scores of a full sort position by position (the ids can differ from a sort's only in the
    order of equal scores)."""
    excluded = set(excluded)
    assert len(set(ids.tolist())) == len(ids) and not set(ids.tolist()) & excluded
    assert scores.tolist() == row_scores[ids].tolist()
    allowed = np.array([i for i in range(len(row_scores)) if i not in excluded], dtype=np.int64)
    best = np.sort(row_scores[allowed])[::-1][: len(ids)]
    assert scores.tolist() == best.tolist()


def assert_no_ties_at_the_top(row_scores: np.ndarray, excluded: Iterable[int], depth: int) -> None:
    """A premise: no two of the ``depth`` best items (``excluded`` left out) have equal scores, so
    every correct ranking of them is the same."""
    excluded = set(excluded)
    allowed = [i for i in range(len(row_scores)) if i not in excluded]
    best = np.sort(row_scores[allowed])[::-1][:depth]
    assert np.all(np.diff(best) < 0), f"tied scores among the best {depth}: pick other test data"
