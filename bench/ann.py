"""Exact top-k vs Annoy on our own ALS factors, compared at the same recall.

    .venv/bin/python bench/ann.py [--items 20000,100000,200000] [--events 1000000] [--trees 50]

For each catalogue size it generates a shop (``bench/_data.py: synthetic``), fits implicit ALS
with our defaults (``fit_als``) and then runs the two queries serving makes against the item
factors, through the same functions serving calls (``storefront_recs.engine.ann``):

- similar items: cosine neighbours of an item (Annoy ``angular`` index), query items drawn by
  their event counts (popular items are asked for most, as in a shop);
- for-you: top items by dot product with a user's factors (Annoy ``dot`` index).

Exact search is what serving runs: implicit's ``topk`` on one thread for cosine neighbours, and
``NormOrderedIndex`` (rows sorted by norm, scan stops when no row left can win) for dot products. For Annoy the number of trees is fixed and
``search_k`` (nodes inspected per query) grows until recall@10 against the exact answer
reaches each target; the table gives the query time at the smallest such ``search_k``, so both
methods are compared at equal recall. "-" means Annoy did not reach the target even when
inspecting every node.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import sparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _data import synthetic  # noqa: E402

from storefront_recs.engine.ann import (  # noqa: E402
    NormOrderedIndex,
    build_annoy,
    exact_query,
    load_annoy,
    row_norms,
)
from storefront_recs.engine.fitting import ALSParams, fit_als  # noqa: E402

TOP = 10
RECALL_TARGETS = (0.90, 0.95, 0.99)


def als_factors(n_items: int, n_events: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item factors, user factors and item event counts of ALS fitted on a generated shop."""
    ds = synthetic(n_events, n_users=max(n_events // 20, 1000), n_items=n_items, seed=seed)
    users = np.unique(ds.users, return_inverse=True)[1]
    items = np.array([int(s[5:]) for s in ds.items])
    matrix = sparse.csr_matrix((np.ones(len(users), np.float32), (users, items)),
                               shape=(int(users.max()) + 1, n_items))
    matrix.sum_duplicates()
    model = fit_als(matrix, ALSParams())
    counts = np.bincount(items, minlength=n_items).astype(np.float64)
    return np.asarray(model.item_factors), np.asarray(model.user_factors), counts


def timed(queries: list[np.ndarray], search: object) -> tuple[list[set[int]], float]:
    """Answers (as id sets) and mean milliseconds per query."""
    t0 = time.perf_counter()
    answers = [set(search(q)) for q in queries]  # type: ignore[operator]
    return answers, (time.perf_counter() - t0) * 1000 / len(queries)


def recall(approx: list[set[int]], exact: list[set[int]]) -> float:
    return float(np.mean([len(a & e) / max(len(e), 1) for a, e in zip(approx, exact, strict=True)]))


def compare(name: str, vectors: np.ndarray, queries: list[np.ndarray], metric: str, trees: int,
            workdir: Path, exact_search: object) -> list[str]:
    """One table row: exact ms, Annoy build s, and Annoy ms at each recall target."""
    exact, exact_ms = timed(queries, exact_search)
    path = str(workdir / f"{name}.ann")
    t0 = time.perf_counter()
    build_annoy(vectors, metric, trees, 1, path)
    build_s = time.perf_counter() - t0
    index = load_annoy(path, vectors.shape[1], metric)
    cells = []
    search_k = TOP * trees
    targets = list(RECALL_TARGETS)
    while targets and search_k <= len(vectors) * trees * 2:
        def search(q: np.ndarray, k: int = search_k) -> list[int]:
            return index.get_nns_by_vector(q.tolist(), TOP, search_k=k)  # type: ignore[no-any-return]
        approx, annoy_ms = timed(queries, search)
        got = recall(approx, exact)
        while targets and got >= targets[0]:
            cells.append(f"{annoy_ms:.2f} (k={search_k:,}, r={got:.3f})")
            targets.pop(0)
        search_k *= 2
    cells += ["-"] * len(targets)
    index.unload()
    return [f"{exact_ms:.2f}", f"{build_s:.1f}", *cells]


def bench_size(n_items: int, events: int, trees: int, queries: int, rng: np.random.Generator) -> None:
    """Print the similar-items and for-you rows for one catalogue size."""
    item_factors, user_factors, counts = als_factors(n_items, events, seed=1)
    asked = rng.choice(n_items, queries, p=counts / counts.sum())
    users = rng.integers(0, len(user_factors), queries)
    norms = row_norms(item_factors)
    by_norm = NormOrderedIndex(item_factors)
    workdir = Path(tempfile.mkdtemp(prefix="recs-ann-"))
    try:
        similar = compare("angular", item_factors, [item_factors[i] for i in asked], "angular", trees, workdir,
                          lambda q: exact_query(item_factors, q, TOP, norms=norms)[0].tolist())
        print(f"| {n_items:,} | similar (cosine) | " + " | ".join(similar) + " |", flush=True)
        for_you = compare("dot", item_factors, [user_factors[u] for u in users], "dot", trees, workdir,
                          lambda q: by_norm.query(q, TOP)[0].tolist())
        print(f"| {n_items:,} | for-you (dot) | " + " | ".join(for_you) + " |", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", default="20000,100000,200000", help="catalogue sizes, comma separated")
    parser.add_argument("--events", type=int, default=1_000_000, help="generated events per shop")
    parser.add_argument("--trees", type=int, default=50, help="Annoy trees (RECS_ANN_TREES default)")
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    heads = " | ".join(f"Annoy ms @ recall {t}" for t in RECALL_TARGETS)
    print(f"top {TOP}, {args.trees} trees, {args.queries} queries, one thread; ms per query\n")
    print(f"| items | query | exact ms | Annoy build s | {heads} |")
    print("|---|---|---|---|" + "---|" * len(RECALL_TARGETS))
    for n_items in (int(s) for s in args.items.split(",")):
        bench_size(n_items, args.events, args.trees, args.queries, rng)


if __name__ == "__main__":
    main()
