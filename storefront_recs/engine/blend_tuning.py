"""Per-shop choice of the for-you blend, by NDCG@10 on the training run's own time split.

Serving sums, per candidate item, ``weight[source] * score / best score of that source`` over
the sources ALS, EASE, item-item (neighbours of the visitor's latest items) and popularity,
each cut to its top ``depth`` after leaving out what the visitor already has. This module
rebuilds those per-source top lists for the evaluation users from the models fitted on the
time split (so no held-out item leaks in), once; then every weight combination of the grid is
scored by re-weighting the same lists, which costs one ``bincount`` per combination.

The best combination is stored in the bundle manifest and serving uses it instead of
``RECS_BLEND`` (see ``RECS_BLEND_AUTO``). It replaces the configured blend only when its gain is
larger than the noise of the split: the mean of the per-user NDCG differences must exceed
``noise_z`` standard errors (a paired test), otherwise a few lucky hits among many users (a
sparse log such as Taobao's) would decide the blend.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from implicit.cpu.topk import topk
from scipy import sparse

from ..config import from_settings, setting
from . import ease as ease_model
from .evaluate import top_k_shared
from .fitting import fit_itemitem, top_k_per_row, visitor_popularity

DEPTH = 50  # serving cuts each source to max(4 n, 50) candidates
SEED_ITEMS = 5  # the same as serving's seeds of item-item neighbours
SEED_DECAY = 0.75
MIN_USERS = 10  # fewer validation users than this: keep the configured blend
MAX_USERS = 2000  # a seeded sample of the evaluation users above this (keeps the stage cheap)
SOURCES = ("als", "ease", "itemitem", "popularity")
PLUGIN_GRID = (0.0, 0.5, 1.0)  # weights tried for a plugin source that RECS_BLEND_GRID does not name


@dataclass
class SourceLists:
    """One source's top ``depth`` items per validation user (-1 pads) and their fused scores."""

    ids: np.ndarray  # users x depth, int64
    scores: np.ndarray  # users x depth, float32, each row's best = 1 (before the weight)


@dataclass
class BlendChoice:
    weights: dict[str, float]
    ndcg: float
    configured_ndcg: float
    users: int
    table: list[tuple[dict[str, float], float]] = field(default_factory=list)
    gain_z: float = 0.0  # the best blend's paired gain over the configured one, in standard errors
    sources: list[str] = field(default_factory=list)  # the sources whose lists were scored

    def manifest(self) -> dict[str, Any]:
        return {"weights": self.weights, "validation_ndcg@10": round(self.ndcg, 6),
                "configured_ndcg@10": round(self.configured_ndcg, 6), "users": self.users,
                "gain_z": round(self.gain_z, 3), "sources": list(self.sources)}


def grid(spec: Mapping[str, Sequence[float]], available: Sequence[str]) -> list[dict[str, float]]:
    """Every combination of the weights per source (sources not available get weight 0);
    plugin sources (any other available name) try ``spec``'s weights or ``PLUGIN_GRID``."""
    names = [s for s in SOURCES if s in spec] + [s for s in available if s not in SOURCES]
    values = [[float(w) for w in spec.get(s, PLUGIN_GRID)] if s in available else [0.0] for s in names]
    combos = []
    for combo in itertools.product(*values):
        weights = {s: w for s, w in zip(names, combo, strict=True) if w > 0}
        if weights and weights not in combos:
            combos.append(weights)
    return combos


def normalise_rows(scores: np.ndarray) -> np.ndarray:
    top = scores.max(axis=1, keepdims=True) if scores.shape[1] else np.zeros((len(scores), 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(top > 0, scores / np.where(top > 0, top, 1.0), 0.0)
    return np.maximum(out, 0.0).astype(np.float32)


def _padded(m: sparse.csr_matrix, depth: int) -> SourceLists:
    """A CSR matrix whose rows are sorted best first as padded (ids, max-normalised scores)."""
    n = len(m.indptr) - 1
    ids = np.full((n, depth), -1, dtype=np.int64)
    scores = np.zeros((n, depth), dtype=np.float32)
    rows = np.repeat(np.arange(n), np.diff(m.indptr))
    pos = np.arange(m.nnz) - m.indptr[rows]
    keep = pos < depth
    ids[rows[keep], pos[keep]] = m.indices[keep]
    scores[rows[keep], pos[keep]] = m.data[keep]
    return SourceLists(ids, normalise_rows(scores))


def sparse_source(scores: sparse.csr_matrix, seen: sparse.csr_matrix, depth: int = DEPTH) -> SourceLists:
    """Top lists from sparse per-user scores (users x items), the ``seen`` items left out."""
    scores = sparse.csr_matrix(scores, dtype=np.float32)
    scores = (scores - scores.multiply(seen > 0)).tocoo()
    keep = scores.data > 0
    return _padded(top_k_per_row(scores.row[keep], scores.col[keep], scores.data[keep], scores.shape[0], depth)
                   if keep.any() else sparse.csr_matrix(scores.shape, dtype=np.float32), depth)


def als_source(user_factors: np.ndarray, item_factors: np.ndarray, train: sparse.csr_matrix,
               users: np.ndarray, depth: int = DEPTH) -> SourceLists:
    """ALS: user factors . item factors, top ``depth`` with implicit's ``topk``."""
    items = np.ascontiguousarray(item_factors, dtype=np.float32)
    query = np.ascontiguousarray(user_factors[users], dtype=np.float32)
    ids, scores = topk(items, query, min(depth, items.shape[0]), filter_query_items=train[users])
    return als_lists(ids, scores)


def als_lists(ids: np.ndarray, scores: np.ndarray) -> SourceLists:
    """The ALS source from each user's top items and scores (best first, seen items left out),
    as ``als_source`` computes them or as the evaluation kept them (``evaluate.TopLists``)."""
    scores = np.where((ids >= 0) & np.isfinite(scores) & (scores > 0), scores, 0.0)
    return SourceLists(np.where(scores > 0, ids, -1).astype(np.int64), normalise_rows(scores))


def ease_source(weights: sparse.csr_matrix, train: sparse.csr_matrix, users: np.ndarray,
                depth: int = DEPTH) -> SourceLists:
    """EASE: the sum of the (sparse, top-k) rows of each user's training items."""
    rows = train[users]
    binary = sparse.csr_matrix((np.ones(rows.nnz, np.float32), rows.indices, rows.indptr), shape=rows.shape)
    return sparse_source(binary @ weights, rows, depth)


def latest_items(users: np.ndarray, items: np.ndarray, ts: np.ndarray, train: sparse.csr_matrix,
                 wanted: np.ndarray, n: int = SEED_ITEMS) -> dict[int, list[int]]:
    """The ``wanted`` users' ``n`` most recent distinct training items (by their last event),
    newest first: the seeds serving takes from a visitor's history."""
    mask = np.isin(users, wanted)
    u, i, t = users[mask].astype(np.int64), items[mask].astype(np.int64), ts[mask]
    keep = np.asarray(train[u, i]).ravel() > 0
    u, i, t = u[keep], i[keep], t[keep]
    order = np.lexsort((-t, u))
    u, i = u[order], i[order]
    _, first = np.unique(u * train.shape[1] + i, return_index=True)
    first = np.sort(first)  # each cell's newest event, still by user, newest first
    u, i = u[first], i[first]
    rank = np.arange(len(u)) - np.searchsorted(u, u, side="left")
    out: dict[int, list[int]] = {}
    for user, item in zip(u[rank < n], i[rank < n], strict=True):
        out.setdefault(int(user), []).append(int(item))
    return out


def itemitem_source(similarity: sparse.csr_matrix, seeds: Mapping[int, Sequence[int]],
                    train: sparse.csr_matrix, users: np.ndarray, depth: int = DEPTH) -> SourceLists:
    """Item-item: neighbours of each user's latest items, each seed's row max-normalised and
    weighted by recency (weights summing to one), as serving does."""
    n_items = similarity.shape[0]
    sims = sparse.csr_matrix(similarity, dtype=np.float32, copy=True)
    sims.setdiag(0)
    sims.eliminate_zeros()
    row_max = np.zeros(n_items, dtype=np.float32)
    filled = np.flatnonzero(np.diff(sims.indptr))
    if len(filled):
        row_max[filled] = np.maximum(np.maximum.reduceat(sims.data, sims.indptr[filled]), 0.0)
    scaled = sparse.diags(np.where(row_max > 0, 1.0 / np.maximum(row_max, 1e-12), 0.0)) @ sims
    rows, cols, vals = [], [], []
    for r, u in enumerate(users):
        s = list(seeds.get(int(u), []))
        decay = SEED_DECAY ** np.arange(len(s))
        rows += [r] * len(s)
        cols += s
        vals += list(decay / (decay.sum() or 1.0))
    pick = sparse.csr_matrix((vals, (rows, cols)), shape=(len(users), n_items), dtype=np.float32)
    return sparse_source(pick @ scaled, train[users], depth)


def popularity_source(popularity: np.ndarray, train: sparse.csr_matrix, users: np.ndarray,
                      depth: int = DEPTH) -> SourceLists:
    """Popularity: the same list for everyone (ties by item number), minus each user's items."""
    scores = np.asarray(popularity, dtype=np.float32)
    ranking = np.argsort(-scores, kind="stable")
    top, valid = top_k_shared(ranking[scores[ranking] > 0], train[users], depth)
    return SourceLists(np.where(valid, top, -1).astype(np.int64),
                       normalise_rows(np.where(valid, scores[top], np.float32(0))))


def ndcg_of_blends(sources: Mapping[str, SourceLists], test: sparse.csr_matrix, users: np.ndarray,
                   blends: Sequence[Mapping[str, float]]) -> list[float]:
    """Mean NDCG@10 of each blend over ``users`` (scores summed per item, best 10 kept)."""
    return [float(row.mean()) if row.size else 0.0 for row in user_ndcg_of_blends(sources, test, users, blends)]


def user_ndcg_of_blends(sources: Mapping[str, SourceLists], test: sparse.csr_matrix, users: np.ndarray,
                        blends: Sequence[Mapping[str, float]]) -> np.ndarray:
    """NDCG@10 of each blend for each of ``users`` (blends x users)."""
    names = list(sources)
    n_users, n_items = len(users), test.shape[1]
    if not n_users:
        return np.zeros((len(blends), 0))
    ids = np.hstack([sources[s].ids for s in names])
    scores = np.hstack([sources[s].scores for s in names])
    which = np.repeat(np.arange(len(names)), [sources[s].ids.shape[1] for s in names])
    row = np.repeat(np.arange(n_users), ids.shape[1])
    col, score, src = ids.ravel(), scores.ravel(), np.tile(which, n_users)
    keep = col >= 0
    # each (user, item) candidate once: a padded users x candidates table, same for every blend
    keys, inverse = np.unique(row[keep] * n_items + col[keep], return_inverse=True)
    key_user, key_item = keys // n_items, keys % n_items
    slot = np.arange(len(keys)) - np.searchsorted(key_user, key_user, side="left")
    width = int(slot.max()) + 1 if len(keys) else 1
    hits = np.zeros((n_users, width), dtype=bool)
    hits[key_user, slot] = np.asarray(test[users][key_user, key_item]).ravel() > 0
    n_true = np.diff(test[users].indptr)
    discounts = 1.0 / np.log2(np.arange(2, 12))
    ideal = np.cumsum(discounts)[np.clip(np.minimum(n_true, 10) - 1, 0, 9)] * (n_true > 0)
    k = min(10, width)
    out = np.zeros((len(blends), n_users))
    # only users with a held-out item among their candidates can score above 0 in any blend
    scored = np.flatnonzero(hits.any(axis=1))
    kept_keys = np.isin(key_user, scored)
    entries = kept_keys[inverse]
    inverse = (np.cumsum(kept_keys) - 1)[inverse[entries]]
    entry_score, entry_src = score[keep][entries], src[keep][entries]
    key_row, slot = np.searchsorted(scored, key_user[kept_keys]), slot[kept_keys]
    hits, ideal = hits[scored], ideal[scored]
    for b, blend in enumerate(blends):
        w = np.array([float(blend.get(s, 0.0)) for s in names], dtype=np.float32)
        summed = np.bincount(inverse, weights=entry_score * w[entry_src], minlength=len(key_row))
        table = np.full((len(scored), width), -1.0)
        table[key_row, slot] = np.where(summed > 0, summed, -1.0)
        top = np.argpartition(-table, k - 1, axis=1)[:, :k] if width > k else \
            np.tile(np.arange(width), (len(scored), 1))
        order = np.argsort(-np.take_along_axis(table, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        gained = np.take_along_axis(hits, top, axis=1) & (np.take_along_axis(table, top, axis=1) > 0)
        dcg = (gained * discounts[:k]).sum(axis=1)
        out[b, scored] = np.where(ideal > 0, dcg / np.maximum(ideal, 1e-12), 0.0)
    return out


def paired_z(gains: np.ndarray) -> float:
    """Mean of per-user differences over its standard error (inf when every user gains alike)."""
    if gains.size < 2:
        return 0.0
    mean, se = float(gains.mean()), float(gains.std(ddof=1)) / np.sqrt(gains.size)
    if se == 0.0:
        return float("inf") if mean > 0 else 0.0
    return mean / se


def choose(sources: Mapping[str, SourceLists], test: sparse.csr_matrix, users: np.ndarray,
           configured: Mapping[str, float], candidates: Sequence[Mapping[str, float]],
           noise_z: float = 0.0) -> BlendChoice:
    """The blend with the best validation NDCG@10, if its paired gain over the configured blend
    exceeds ``noise_z`` standard errors; otherwise the configured one (which also wins ties)."""
    configured = {k: float(v) for k, v in configured.items() if v > 0}
    blends = [configured] + [dict(c) for c in candidates if dict(c) != configured]
    per_user = user_ndcg_of_blends(sources, test, users, blends)
    scores = [float(row.mean()) if row.size else 0.0 for row in per_user]
    best = int(np.argmax(scores))
    z = paired_z(per_user[best] - per_user[0]) if best else 0.0
    if best and not z > noise_z:
        best = 0
    return BlendChoice(blends[best], scores[best], scores[0], len(users),
                       list(zip(blends, scores, strict=True)), gain_z=z, sources=list(sources))


def _weights(weights: Mapping[str, Any]) -> dict[str, float]:
    return {str(k): float(v) for k, v in dict(weights).items()}


def _grid(grid: Mapping[str, Any]) -> dict[str, list[float]]:
    return {str(k): [float(w) for w in v] for k, v in dict(grid).items()}


@dataclass(frozen=True)
class BlendSettings:
    """What the training run reads for the blend and the EASE source."""

    configured: dict[str, float] = setting("RECS_BLEND", _weights)
    auto: bool = setting("RECS_BLEND_AUTO")
    grid: dict[str, list[float]] = setting("RECS_BLEND_GRID", _grid)
    ease_max_items: int = setting("RECS_EASE_MAX_ITEMS")
    ease_lambda: float = setting("RECS_EASE_LAMBDA", float)
    ease_k: int = setting("RECS_EASE_K")
    itemitem_k: int = setting("RECS_ITEMITEM_K")
    noise_z: float = setting("RECS_BLEND_NOISE_Z", float)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BlendSettings:
        return from_settings(cls, config)

    def wants(self, source: str) -> bool:
        """Whether any blend this run may serve gives ``source`` a weight."""
        return self.configured.get(source, 0) > 0 or (self.auto and any(w > 0 for w in self.grid.get(source, [])))


def train_popularity(train: sparse.csr_matrix, users: np.ndarray, items: np.ndarray,
                     decay: np.ndarray) -> np.ndarray:
    """Serving's popularity (``models.visitor_popularity``) from the events of ``train``'s cells,
    each with its time decay."""
    if not len(users):
        return np.zeros(train.shape[1])
    kept = np.asarray(train[users, items]).ravel() > 0
    return visitor_popularity(users[kept], items[kept], decay[kept], train.shape[1])


def validation_users(users: np.ndarray, settings: BlendSettings) -> np.ndarray | None:
    """The evaluation users the blend is scored on (a seeded sample of ``MAX_USERS`` above
    that); None when automatic choice is off or there are too few of them to trust it."""
    if not settings.auto or len(users) < MIN_USERS:
        return None
    if len(users) > MAX_USERS:
        users = np.sort(np.random.default_rng(0).choice(users, MAX_USERS, replace=False))
    return users


def select_blend(
    train: sparse.csr_matrix, test: sparse.csr_matrix, users: np.ndarray,
    user_factors: np.ndarray, item_factors: np.ndarray,
    events: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], settings: BlendSettings,
    *, als: SourceLists | None = None, similarity: sparse.csr_matrix | None = None,
    extra: Mapping[str, SourceLists] | None = None,
) -> BlendChoice | None:
    """Score the blend grid on the time split (models fitted on ``train`` only); None when
    automatic choice is off or there are too few evaluation users to trust it.

    ``events``: every event's (user, item, time, time decay), for the item-item seeds (latest
    items) and popularity.
    ``als``: the ALS source for ``validation_users(users)`` when already computed (the
    evaluation ranks those users with the same factors). ``similarity``: the item-item
    similarity fitted on ``train`` (``fit_itemitem(train, settings.itemitem_k)``), when the
    caller has fitted it already. ``extra``: plugin sources' lists for ``validation_users(users)``.
    """
    picked = validation_users(users, settings)
    if picked is None:
        return None
    users = picked
    event_users, event_items, event_ts, decay = events
    sources = {"als": als if als is not None else als_source(user_factors, item_factors, train, users),
               "popularity": popularity_source(train_popularity(train, event_users, event_items, decay),
                                               train, users)}
    if settings.wants("itemitem"):
        if similarity is None:
            similarity = fit_itemitem(train, settings.itemitem_k).similarity
        seeds = latest_items(event_users, event_items, event_ts, train, users)
        sources["itemitem"] = itemitem_source(similarity, seeds, train, users)
    if settings.wants("ease") and ease_model.fits(train, settings.ease_max_items):
        weights = ease_model.fit_ease(train, settings.ease_lambda, settings.ease_k)
        sources["ease"] = ease_source(weights, train, users)
    sources.update(extra or {})
    return choose(sources, test, users, settings.configured, grid(settings.grid, list(sources)),
                  settings.noise_z)
