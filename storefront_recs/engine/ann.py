"""Neighbour search over dense vectors: exact (implicit's ``topk``) or Annoy (saved, mmapped).

``implicit``'s own Annoy wrapper cannot save its index, so indexes are built with
``annoy.AnnoyIndex`` directly and written with ``AnnoyIndex.save``. Both paths answer with
implicit's ``(ids, scores)`` shape, best first.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from functools import cache

import numpy as np
from annoy import AnnoyIndex
from implicit.cpu.topk import topk
from threadpoolctl import ThreadpoolController

METRICS = ("dot", "angular")
SEARCH_K = 4000


@cache
def _threadpools() -> ThreadpoolController:
    return ThreadpoolController()  # inspects the loaded libraries once per process


def one_blas_thread() -> AbstractContextManager[object]:
    """BLAS on one thread for the block: a web worker answers one request per core, and a
    multi-threaded BLAS on a busy machine spends more time waiting for its threads than
    multiplying (a 100k-item top-k: about 4 ms with two threads, 1 ms with one, here)."""
    return _threadpools().limit(limits=1, user_api="blas")


def build_annoy(vectors: np.ndarray, metric: str, trees: int, seed: int, path: str) -> None:
    """Build an Annoy index over the rows of ``vectors`` and save it to ``path``."""
    dims = max(int(vectors.shape[1]), 1)
    index = AnnoyIndex(dims, metric)  # type: ignore[arg-type,unused-ignore]
    index.set_seed(seed)
    for i, row in enumerate(np.asarray(vectors, dtype=np.float32)):
        index.add_item(i, row.tolist())
    index.build(max(trees, 1), n_jobs=1)
    index.save(path)
    index.unload()


def load_annoy(path: str, dims: int, metric: str) -> AnnoyIndex:
    """Open a saved index; the file is mmapped, never read into each worker's memory."""
    index = AnnoyIndex(max(dims, 1), metric)  # type: ignore[arg-type,unused-ignore]
    index.load(path, prefault=False)
    return index


def annoy_query(
    index: AnnoyIndex, vector: np.ndarray, n: int, metric: str, exclude: Iterable[int] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n`` by Annoy, skipping ``exclude``; angular scores become cosines.

    Inspects at least ``SEARCH_K`` nodes: Annoy's default (n x trees) gave recall@10 of 0.90-0.97
    on our factors; 4,000 gave 0.99+ up to 100k items (bench/ann.py).
    """
    skip = set(int(i) for i in exclude)
    ids, dist = index.get_nns_by_vector(
        np.asarray(vector, dtype=np.float32).tolist(), n + len(skip),
        search_k=max(SEARCH_K, (n + len(skip)) * index.get_n_trees()), include_distances=True,
    )
    ids_arr, dist_arr = np.asarray(ids, dtype=np.int64), np.asarray(dist, dtype=np.float32)
    if skip:
        keep = ~np.isin(ids_arr, list(skip))
        ids_arr, dist_arr = ids_arr[keep], dist_arr[keep]
    scores = 1.0 - dist_arr**2 / 2.0 if metric == "angular" else dist_arr
    return ids_arr[:n], scores[:n].astype(np.float32)


def exact_query(
    vectors: np.ndarray,
    vector: np.ndarray,
    n: int,
    *,
    norms: np.ndarray | None = None,
    exclude: Iterable[int] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top ``n`` by dot product (cosine when ``norms`` of the rows are given)."""
    skip = np.fromiter((int(i) for i in exclude), dtype=np.int32)
    n = min(n, max(len(vectors) - len(skip), 0))
    if n <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    ids, scores = topk(
        np.ascontiguousarray(vectors, dtype=np.float32),
        query,
        n,
        item_norms=norms,
        filter_items=skip if len(skip) else None,
        num_threads=1,  # one request, one core: web workers serve many requests in parallel
    )
    ids, scores = ids[0], scores[0]
    keep = ids >= 0
    return ids[keep].astype(np.int64), scores[keep].astype(np.float32)


def row_norms(vectors: np.ndarray) -> np.ndarray:
    """Row norms with zeros replaced by a tiny value (as implicit does)."""
    norms = np.linalg.norm(vectors, axis=1).astype(np.float32)
    norms[norms == 0] = 1e-10
    return norms


class NormOrderedIndex:
    """Exact top-k by dot product that usually reads a fraction of the rows.

    Rows are kept sorted by norm, largest first. Since ``q·row <= |q|·|row|``, once ``n`` scores
    are known no row whose norm is below (their least) / ``|q|`` can enter the top: the scan
    reads the first block, then only up to that norm, in blocks that move the bound up as
    better scores turn up. Only scores that can still enter the top are kept between blocks.
    Answers are those of a full scan (the same items and scores; ties by norm order);
    collaborative factors, whose norms fall steeply from popular items to the long tail, are
    where this saves most.
    """

    FIRST_BLOCK = 2048
    GROWTH = 16.0  # the first block's bound is usually final: few, large blocks up to it
    SLACK = 1e-6  # relative: rows on the bound are read, whatever the rounding of |q|·|row|

    def __init__(self, vectors: np.ndarray) -> None:
        norms = np.linalg.norm(vectors, axis=1).astype(np.float32)
        self.order = np.argsort(-norms, kind="stable")
        self.position = np.empty_like(self.order)
        self.position[self.order] = np.arange(len(self.order))
        self.vectors = np.ascontiguousarray(vectors[self.order], dtype=np.float32)
        self.norms = norms[self.order]
        self._descending = -self.norms  # ascending, for searchsorted

    def query(self, vector: np.ndarray, n: int, exclude: Iterable[int] = ()) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` rows by ``vector · row`` (original row numbers), best first, minus ``exclude``."""
        query = np.asarray(vector, dtype=np.float32).ravel()
        skip = self.position[np.fromiter((int(i) for i in exclude), dtype=np.int64)]
        total = len(self.vectors)
        n = min(n, max(total - len(skip), 0))
        if n <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        query_norm = float(np.linalg.norm(query))
        rows, scores = np.zeros(0, np.int64), np.zeros(0, np.float32)  # those that may be in the top
        least = -np.inf  # the n-th best score so far: no lower score can be in the top
        start, end, block = 0, min(self.FIRST_BLOCK, total), float(self.FIRST_BLOCK)
        while start < end:
            found = self.vectors[start:end] @ query
            if len(skip):
                inside = skip[(skip >= start) & (skip < end)]
                found[inside - start] = -np.inf
            keep = np.flatnonzero(found >= least)
            rows = np.concatenate([rows, keep + start])
            scores = np.concatenate([scores, found[keep]])
            if len(scores) >= n:
                least = max(float(np.partition(scores, len(scores) - n)[len(scores) - n]), least)
                top = scores >= least
                rows, scores = rows[top], scores[top]
            start = end
            limit = total
            if least > -np.inf and query_norm > 0:
                bound = least / query_norm
                bound -= abs(bound) * self.SLACK
                # (a float32 needle: a Python float would cast the whole array first)
                limit = int(np.searchsorted(self._descending, np.float32(-bound), side="right"))
            block *= self.GROWTH
            end = min(limit, start + int(block))
        found_any = scores > -np.inf
        rows, scores = rows[found_any], scores[found_any]
        order = np.lexsort((rows, -scores))[:n]
        return self.order[rows[order]].astype(np.int64), scores[order].astype(np.float32)
