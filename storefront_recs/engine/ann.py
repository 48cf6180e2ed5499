"""Neighbour search over dense vectors: exact (implicit's ``topk``) or Annoy (saved, mmapped).

``implicit``'s own Annoy wrapper cannot save its index, so indexes are built with
``annoy.AnnoyIndex`` directly and written with ``AnnoyIndex.save``. Both paths answer with
implicit's ``(ids, scores)`` shape, best first.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from annoy import AnnoyIndex
from implicit.cpu.topk import topk

METRICS = ("dot", "angular")


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
    """Top ``n`` by Annoy, skipping ``exclude``; angular scores become cosines."""
    skip = set(int(i) for i in exclude)
    ids, dist = index.get_nns_by_vector(
        np.asarray(vector, dtype=np.float32).tolist(), n + len(skip), include_distances=True
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
