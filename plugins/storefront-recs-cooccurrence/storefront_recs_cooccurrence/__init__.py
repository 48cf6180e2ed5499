"""Co-occurrence: for each item, the items the same visitors interacted with."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import sparse

MATRIX = "cooccurrence.npz"


class CooccurrenceSource:
    """A ``storefront_recs.sources`` plugin (see ``storefront_recs.plugins.Source``)."""

    name = "cooccur"
    reason = "often chosen together with what you liked"

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.k = int(options.get("RECS_COOCCUR_K", 100))
        if self.k < 1:
            raise ValueError(f"RECS_COOCCUR_K must be at least 1, got {self.k}")
        self.matrix = sparse.csr_matrix((0, 0), dtype=np.float32)

    def fit(self, user_items: sparse.csr_matrix) -> None:
        binary = sparse.csr_matrix(user_items, dtype=np.float32, copy=True)
        binary.data[:] = 1.0
        counts = (binary.T @ binary).tocsr()
        counts.setdiag(0)
        counts.eliminate_zeros()
        self.matrix = _top_k_rows(counts, self.k)

    def recommend(self, user_items: sparse.csr_matrix, N: int) -> tuple[np.ndarray, np.ndarray]:
        scores = (sparse.csr_matrix(user_items, dtype=np.float32) @ self.matrix).toarray()
        n = min(N, scores.shape[1])
        ids = np.argsort(-scores, axis=1, kind="stable")[:, :n]
        top = np.take_along_axis(scores, ids, axis=1)
        return np.where(top > 0, ids, -1), top

    def similar_items(self, itemid: int, N: int) -> tuple[np.ndarray, np.ndarray]:
        row = self.matrix.getrow(itemid)
        order = np.argsort(-row.data, kind="stable")[:N]
        return row.indices[order].astype(np.int64), row.data[order]

    def save(self, directory: str) -> None:
        sparse.save_npz(os.path.join(directory, MATRIX), self.matrix)

    @classmethod
    def load(cls, directory: str, options: Mapping[str, Any]) -> CooccurrenceSource:
        source = cls(options)
        source.matrix = sparse.load_npz(os.path.join(directory, MATRIX)).tocsr()
        return source


def _top_k_rows(m: sparse.csr_matrix, k: int) -> sparse.csr_matrix:
    """Each row's ``k`` largest entries (ties by column number)."""
    rows, cols, vals = [], [], []
    for r in range(m.shape[0]):
        start, end = m.indptr[r], m.indptr[r + 1]
        data, idx = m.data[start:end], m.indices[start:end]
        keep = np.lexsort((idx, -data))[:k]
        rows.append(np.full(len(keep), r))
        cols.append(idx[keep])
        vals.append(data[keep])
    if not rows:
        return sparse.csr_matrix(m.shape, dtype=np.float32)
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=m.shape, dtype=np.float32)
