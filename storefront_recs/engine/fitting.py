"""The models, each a thin wrapper over a well-kept library.

- ALS: ``implicit.cpu.als.AlternatingLeastSquares`` (fit under a 1-thread BLAS limit).
- item-item: ``implicit.nearest_neighbours.CosineRecommender``.
- content: hashed TF-IDF of title, description, category and attributes, reduced by
  ``sklearn.decomposition.TruncatedSVD``; stateless hashing lets serving embed new items.
- popularity, trending, hour/weekday popularity and "bought together": numpy/scipy counts.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from implicit.nearest_neighbours import CosineRecommender
from implicit.utils import ParameterWarning
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import HashingVectorizer
from threadpoolctl import threadpool_limits

from ..config import from_settings, setting
from .data import DAY, Interactions, lex_order, sessions

CONTENT_FEATURES = 2**20
BASKET_TYPES = ("add_to_cart", "purchase")
BOUGHT_TOGETHER_K = 50
_WORD = re.compile(r"[^\W_]{2,}", re.UNICODE)


@dataclass(frozen=True)
class ALSParams:
    factors: int = setting("RECS_ALS_FACTORS")
    regularization: float = setting("RECS_ALS_REGULARIZATION", float)
    alpha: float = setting("RECS_ALS_ALPHA", float)
    iterations: int = setting("RECS_ALS_ITERATIONS")
    refit_iterations: int = setting("RECS_ALS_REFIT_ITERATIONS")
    seed: int = setting("RECS_TRAIN_SEED")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ALSParams:
        return from_settings(cls, config)


def als_model(params: ALSParams, iterations: int | None = None) -> AlternatingLeastSquares:
    """An unfitted CPU ALS model with these parameters."""
    return AlternatingLeastSquares(
        factors=params.factors,
        regularization=params.regularization,
        alpha=params.alpha,
        iterations=params.iterations if iterations is None else iterations,
        random_state=params.seed,
    )


def fit_als(
    user_items: sparse.csr_matrix,
    params: ALSParams,
    *,
    warm_start: AlternatingLeastSquares | None = None,
    iterations: int | None = None,
) -> AlternatingLeastSquares:
    """Fit ALS; with ``warm_start`` continue from that model's factors (same shape)."""
    with threadpool_limits(1, "blas"):
        model = als_model(params, iterations)
    if user_items.nnz == 0:  # nothing to learn from: zero factors (a new shop, content only)
        model.user_factors = np.zeros((user_items.shape[0], params.factors), np.float32)
        model.item_factors = np.zeros((user_items.shape[1], params.factors), np.float32)
        return model
    if warm_start is not None:
        model.user_factors = np.array(warm_start.user_factors, copy=True)
        model.item_factors = np.array(warm_start.item_factors, copy=True)
    with threadpool_limits(1, "blas"):
        model.fit(user_items, show_progress=False)
    return model


class ImplicitTrainer:
    """The default factor-model backend (``RECS_TRAINER = "implicit"``): implicit's CPU ALS."""

    name = "implicit"

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = options

    def fit(self, user_items: sparse.csr_matrix, params: ALSParams, *,
            warm_start: AlternatingLeastSquares | None = None, iterations: int | None = None) -> AlternatingLeastSquares:
        return fit_als(user_items, params, warm_start=warm_start, iterations=iterations)

    def describe(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {"name": self.name, "version": version("implicit"), "master": "local"}


def fit_itemitem(user_items: sparse.csr_matrix, k: int) -> CosineRecommender:
    """Cosine item-item neighbours (K per item) from the users x items matrix."""
    model = CosineRecommender(K=k)
    if user_items.nnz == 0:
        model.similarity = sparse.csr_matrix((user_items.shape[1],) * 2, dtype=np.float32)
        return model
    # no BLAS limit here (it uses none): the pipeline fits it beside a stage that sets one, and
    # threadpoolctl's limits are process-wide, so two threads restoring them would race
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParameterWarning)  # its own normalize() hands fit a COO
        model.fit(user_items, show_progress=False)
    return model


# -- content ------------------------------------------------------------------------------------
def item_tokens(item: Mapping[str, Any]) -> list[str]:
    """The words of an item's title (twice), description, category and attributes."""
    title = str(item.get("title") or "").lower()
    tokens = _WORD.findall(title) * 2 + _WORD.findall(str(item.get("description") or "").lower())
    category = str(item.get("category") or "").strip().lower()
    if category:
        tokens += ["cat:" + category] * 3 + _WORD.findall(category)
    for key, value in sorted((item.get("attributes") or {}).items()):
        if isinstance(value, list | tuple):
            tokens += [f"attr:{key}={v}".lower() for v in value]
        elif value is not None and not isinstance(value, dict):
            tokens.append(f"attr:{key}={value}".lower())
    return tokens


_HASHER = HashingVectorizer(
    analyzer=item_tokens, n_features=CONTENT_FEATURES, alternate_sign=False, norm=None
)


def _normalize_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (m / norms).astype(np.float32)


@dataclass
class ContentModel:
    """Hashed TF-IDF restricted to the features seen in training, projected to ``dims``."""

    item_ids: list[str]
    features: np.ndarray  # int64 hashed feature columns seen in the catalogue, sorted
    idf: np.ndarray  # float32 per kept feature
    components: np.ndarray  # float32 (dims x features)
    vectors: np.ndarray  # float32 (items x dims), L2-normalised

    def embed(self, items: list[Mapping[str, Any]]) -> np.ndarray:
        """Content vectors of any items (also ones added after training)."""
        counts = _HASHER.transform(items).tocsc()[:, self.features].tocsr()
        tfidf = _tfidf(counts, self.idf)
        return _normalize_rows(np.asarray(tfidf @ self.components.T))


def fit_content(catalog: list[dict[str, Any]], dims: int, seed: int) -> ContentModel:
    """Fit the content model on the active catalogue."""
    ids = [item["id"] for item in catalog]
    counts = _HASHER.transform(catalog).tocsc()
    df = np.diff(counts.indptr)
    features = np.flatnonzero(df).astype(np.int64)
    n = max(len(ids), 1)
    idf = (np.log((1 + n) / (1 + df[features])) + 1.0).astype(np.float32)
    k = min(dims, len(ids) - 1, len(features) - 1)
    if k < 1:
        return ContentModel(ids, features, idf, np.zeros((1, len(features)), np.float32),
                            np.zeros((len(ids), 1), np.float32))
    model = ContentModel(ids, features, idf, np.zeros((k, len(features)), np.float32),
                         np.zeros((len(ids), k), np.float32))
    tfidf = _tfidf(counts[:, features].tocsr(), idf)
    svd = TruncatedSVD(n_components=k, random_state=seed, algorithm="randomized", n_iter=5)
    with threadpool_limits(1, "blas"):
        svd.fit(tfidf)
    model.components = svd.components_.astype(np.float32)
    model.vectors = _normalize_rows(np.asarray(tfidf @ model.components.T))
    return model


def _tfidf(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    counts = counts.astype(np.float32)
    counts.data = 1.0 + np.log(counts.data)
    tfidf = counts.multiply(idf[np.newaxis, :]).tocsr()
    norms = np.sqrt(np.asarray(tfidf.multiply(tfidf).sum(axis=1))).ravel()
    norms[norms == 0] = 1.0
    return (sparse.diags(1.0 / norms) @ tfidf).tocsr()


# -- popularity ---------------------------------------------------------------------------------
@dataclass
class Popularity:
    popularity: np.ndarray  # distinct visitors per item, each counted with the decay of their latest event
    trending: np.ndarray  # recent window vs the 7 windows before it
    by_hour: np.ndarray  # 24 x items, decayed strength by UTC hour of day
    by_weekday: np.ndarray  # 7 x items, Monday = 0


def fit_popularity(inter: Interactions, trending_days: float) -> Popularity:
    """Decayed visitors per item, decayed strength by hour and weekday, and a trending score per item."""
    n = inter.n_items
    w = inter.strength.astype(np.float64)
    popularity = visitor_popularity(inter.users, inter.items, inter.decay, n)
    hour = ((inter.ts // 3600) % 24).astype(np.int64)
    weekday = ((inter.ts // DAY + 3) % 7).astype(np.int64)  # 1970-01-01 was a Thursday
    by_hour = np.bincount(hour * n + inter.items, weights=w, minlength=24 * n).reshape(24, n)
    by_weekday = np.bincount(weekday * n + inter.items, weights=w, minlength=7 * n).reshape(7, n)
    trending = np.zeros(n)
    if len(inter.ts):
        window = trending_days * DAY
        age = float(inter.ts.max()) - inter.ts
        recent = np.bincount(inter.items[age < window], weights=inter.raw[age < window], minlength=n)
        past_mask = (age >= window) & (age < 8 * window)
        past = np.bincount(inter.items[past_mask], weights=inter.raw[past_mask], minlength=n) / 7.0
        trending = np.maximum(recent - past, 0.0) / np.sqrt(past + 1.0)
    return Popularity(
        popularity.astype(np.float32), trending.astype(np.float32),
        by_hour.astype(np.float32), by_weekday.astype(np.float32),
    )


def visitor_popularity(users: np.ndarray, items: np.ndarray, weights: np.ndarray, n_items: int) -> np.ndarray:
    """Per item, the sum over its distinct visitors of their largest event weight (the time decay
    of their latest event): each visitor counts once, however many events or units they had.
    Summed strengths let a few heavy visitors decide (one wholesale order of 500 units, one
    visitor's 40 page views); on the quality benchmark's validation split distinct visitors
    ranked better on every data set (bench/blend_validation.py)."""
    cell = users.astype(np.int64) * n_items + items
    weights = np.asarray(weights, dtype=np.float64)
    if len(cell) > 1 and bool(np.any(cell[1:] < cell[:-1])):
        order = np.argsort(cell, kind="stable")
        cell, weights = cell[order], weights[order]
    if not len(cell):
        return np.zeros(n_items)
    starts = np.flatnonzero(np.concatenate(([True], cell[1:] != cell[:-1])))
    return np.bincount(cell[starts] % n_items, weights=np.maximum.reduceat(weights, starts), minlength=n_items)


# -- bought together ----------------------------------------------------------------------------
def fit_bought_together(inter: Interactions, session_gap: float, k: int = BOUGHT_TOGETHER_K) -> sparse.csr_matrix:
    """Items x items: carted/bought in the same session (an order is one), cosine-normalised, top k per row."""
    codes = [inter.type_names.index(t) for t in BASKET_TYPES if t in inter.type_names]
    mask = np.isin(inter.types, codes)
    n = inter.n_items
    if not mask.any():
        return sparse.csr_matrix((n, n), dtype=np.float32)
    session = sessions(inter.users[mask], inter.ts[mask], session_gap)
    baskets = sparse.csr_matrix(
        (np.ones(int(mask.sum()), np.float32), (session, inter.items[mask])),
        shape=(int(session.max()) + 1, n),
    )
    baskets.data[:] = 1.0  # several lines of one item in a basket count once
    baskets.sum_duplicates()
    baskets.data[:] = 1.0
    co = (baskets.T @ baskets).tocsr()
    counts = co.diagonal().astype(np.float32)
    co.setdiag(0)
    co.eliminate_zeros()
    coo = co.tocoo()
    scores = coo.data / np.sqrt(counts[coo.row] * counts[coo.col])
    return top_k_per_row(coo.row, coo.col, scores.astype(np.float32), n, k)


def top_k_per_row(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, n: int, k: int) -> sparse.csr_matrix:
    """A CSR matrix keeping only each row's ``k`` largest entries, sorted best first."""
    order = lex_order(np.asarray(rows, dtype=np.int64), -data)
    rows, cols, data = rows[order], cols[order], data[order]
    counts = np.bincount(rows, minlength=n)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    keep = (np.arange(len(rows)) - starts[rows]) < k
    rows, cols, data = rows[keep], cols[keep], data[keep]
    indptr = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=n)))).astype(np.int64)
    return sparse.csr_matrix((data, cols.astype(np.int32), indptr), shape=(n, n))
