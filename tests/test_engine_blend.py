"""EASE and the per-shop choice of the for-you blend: on small generated data, then end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_app
from exact_scores import on_exact_grid
from flask import Flask
from scipy import sparse
from test_engine_train import SMALL, fill

from storefront_recs import Recs
from storefront_recs.engine import ease
from storefront_recs.engine.blend_tuning import (
    DEPTH,
    BlendSettings,
    SourceLists,
    als_lists,
    als_source,
    choose,
    popularity_source,
    select_blend,
    train_popularity,
    validation_users,
)
from storefront_recs.engine.evaluate import TopLists, evaluate_scorer, factor_scorer
from storefront_recs.engine.fitting import ALSParams, fit_als, top_k_per_row, visitor_popularity
from storefront_recs.serving.recommendation import Recommendation
from storefront_recs.serving.rules import Filters
from storefront_recs.tracking.identity import Visitor

GRID = {"als": [0.0, 1.0], "ease": [0.0, 1.0], "itemitem": [0.0, 0.5], "popularity": [0.0, 0.5, 1.0, 4.0]}


def matrix(rows: list[list[int]], n_items: int) -> sparse.csr_matrix:
    users = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    items = np.concatenate([np.asarray(r, dtype=np.int64) for r in rows]) if rows else np.zeros(0, np.int64)
    return sparse.csr_matrix((np.ones(len(items), np.float32), (users, items)), shape=(len(rows), n_items))


def test_ease_ranks_the_items_consumed_with_a_visitors_items_first() -> None:
    # Items come in pairs (0, 1), (2, 3), ...: whoever has one has the other; a few have
    # several pairs. Item 8 is the most popular one but goes with nothing in particular.
    rng = np.random.default_rng(0)
    rows = []
    for u in range(200):
        pairs = rng.choice(4, size=1 + u % 2, replace=False)
        rows.append([i for p in pairs for i in (2 * p, 2 * p + 1)] + ([8] if u % 3 else []))
    x = matrix(rows, 10)
    assert ease.fits(x, 9) and not ease.fits(x, 8)  # nine items have interactions (9 has none)
    weights = ease.fit_ease(x, lam=10.0, k=5)
    assert weights.shape == (10, 10) and weights.diagonal().sum() == 0
    for item in (0, 2, 4, 6):
        scores = ease.user_scores(weights, np.array([item]))
        assert int(np.argmax(scores)) == item + 1, scores  # its partner, not the popular item 8
    assert ease.user_scores(weights, np.array([9])).sum() == 0  # an item nobody had: no weights


def test_ease_weights_are_the_closed_form() -> None:
    x = sparse.random(120, 29, density=0.2, random_state=2, format="csr", dtype=np.float32)
    x = sparse.hstack([x, sparse.csr_matrix((120, 1))], format="csr")  # item 29: nobody had it
    x.data[:] = 1.0
    b, active = ease.ease_weights(x, 5.0)
    # with numpy: B = I - P diag(1 / diag P), P = (X'X + lambda I)^-1, zero diagonal
    xa = x[:, active].toarray()
    p = np.linalg.inv(xa.T @ xa + 5.0 * np.eye(len(active)))
    expected = -p / np.diag(p)[np.newaxis, :]
    np.fill_diagonal(expected, 0.0)
    assert active.tolist() == list(range(29)) and np.allclose(b, expected, atol=1e-5)
    assert not np.allclose(b, b.T, atol=1e-3)  # columns scaled, not a symmetric copy of P


def test_popularity_counts_each_visitor_once_with_the_decay_of_their_latest_event() -> None:
    # item 0: one visitor with 50 events of full weight; item 1: three visitors, one event each
    # at half weight; item 2: one visitor whose newest event (weight 0.9) counts, not the old one.
    users = np.array([0] * 50 + [1, 2, 3] + [4, 4])
    items = np.array([0] * 50 + [1, 1, 1] + [2, 2])
    weights = np.array([1.0] * 50 + [0.5] * 3 + [0.2, 0.9])
    order = np.random.default_rng(0).permutation(len(users))  # any order of events
    pop = visitor_popularity(users[order], items[order], weights[order], 4)
    assert pop.tolist() == pytest.approx([1.0, 1.5, 0.9, 0.0])
    # validation's popularity: only the events of the training cells (held-out cells left out)
    train = matrix([[0], [], [1], [1], []], 4)
    no_decay = np.ones(len(users), np.float32)
    assert train_popularity(train, users, items, no_decay).tolist() == [1.0, 2.0, 0.0, 0.0]


def test_the_popularity_source_is_the_most_popular_items_each_user_lacks_in_servings_order() -> None:
    popularity = np.array([0.5, 2.0, 0.0, 2.0, 1.0, 0.5, 0.5])  # item 2 never seen; ties 1/3 and 0/5/6
    train = matrix([[1, 4], [], [3, 0, 6], [1, 3, 4, 0, 5, 6]], 7)
    lists = popularity_source(popularity, train, np.array([0, 1, 2, 3]), depth=4)
    # ties in item order, as serving ranks popularity (np.argsort(-popularity, kind="stable"))
    assert lists.ids.tolist() == [[3, 0, 5, 6], [1, 3, 4, 0], [1, 4, 5, -1], [-1, -1, -1, -1]]
    assert lists.scores[0].tolist() == [1.0, 0.25, 0.25, 0.25]  # each row's best is 1
    assert lists.scores[3].tolist() == [0.0] * 4


def synthetic_split(popular_test: bool, seed: int = 0) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Users with one of four tastes (eight items each) and a few popular items (32..35).

    ``popular_test``: each user's held-out item is a popular item they do not have (the data
    favours popularity); otherwise it is an item of their own taste (the data favours the model).
    """
    rng = np.random.default_rng(seed)
    n_items, train, test = 40, [], []
    for u in range(300):
        taste = np.arange(8) + 8 * (u % 4)
        own = list(rng.choice(taste, 5, replace=False))
        popular = list(rng.choice(np.arange(32, 36), 2, replace=False))
        rest = [i for i in range(32, 36) if i not in popular]
        held = int(rng.choice(rest)) if popular_test else int(own.pop())
        train.append(own + popular)
        test.append([held])
    return matrix(train, n_items), matrix(test, n_items)


# EASE left out: on data this small it learns the popular items as well as popularity does
GRID_WITHOUT_EASE = {source: weights for source, weights in GRID.items() if source != "ease"}


def fitted_split(popular_test: bool) -> tuple[Any, ...]:
    """``synthetic_split``'s matrices, every user, an ALS model fitted on the split, and the
    events select_blend reads (the seeds of item-item: every training item, at one time each)."""
    train, test = synthetic_split(popular_test)
    model = fit_als(train, ALSParams(factors=8, iterations=10, alpha=5.0))
    coo = train.tocoo()
    events = (coo.row.astype(np.int32), coo.col.astype(np.int32), np.arange(coo.nnz, dtype=np.float64),
              np.ones(coo.nnz, np.float32))
    return train, test, np.arange(train.shape[0]), model, events


@pytest.mark.parametrize("popular_test", [True, False])
def test_blend_choice_follows_what_the_validation_data_rewards(popular_test: bool) -> None:
    train, test, users, model, events = fitted_split(popular_test)
    settings = BlendSettings(configured={"als": 1.0, "popularity": 1.0}, grid=GRID_WITHOUT_EASE, noise_z=0.0)
    choice = select_blend(train, test, users, model.user_factors, model.item_factors, events, settings)
    assert choice is not None and choice.users == len(users)
    assert len(choice.table) > 10 and choice.ndcg == max(score for _, score in choice.table)
    assert choice.ndcg >= choice.configured_ndcg
    w = choice.weights
    model_weight = w.get("als", 0) + w.get("ease", 0) + w.get("itemitem", 0)
    if popular_test:
        assert w.get("popularity", 0) > model_weight, choice.table
    else:
        assert w.get("popularity", 0) < model_weight, choice.table
        assert choice.ndcg > 0.3


def test_the_evaluations_kept_als_lists_give_the_same_blend_choice() -> None:
    # the pipeline hands select_blend the ALS lists the evaluation kept from its own scores
    train, test, users, model, events = fitted_split(False)
    # the fitted factors on an exact grid: the evaluation's blocks of users and implicit's topk
    # then compute the same float32 scores on any CPU (see exact_scores)
    user_f, item_f = on_exact_grid(model.user_factors, model.item_factors)
    settings = BlendSettings(configured={"als": 1.0, "popularity": 1.0}, grid=GRID_WITHOUT_EASE, noise_z=0.0)
    picked = validation_users(users, settings)
    assert picked is not None
    kept = TopLists(picked, DEPTH)
    plain = evaluate_scorer(factor_scorer(user_f, item_f), train, test, users)
    assert evaluate_scorer(factor_scorer(user_f, item_f), train, test, users, keep=kept) == plain
    lists = kept.lists()
    assert lists is not None
    reused, direct = als_lists(*lists), als_source(user_f, item_f, train, picked)
    assert (reused.ids >= 0).any() and train.shape[1] <= DEPTH  # no list is cut short of an unseen item
    for user, a, b, sa, sb in zip(picked, reused.ids, direct.ids, reused.scores, direct.scores, strict=True):
        # the same items with the same scores (the order of exact ties may differ)
        assert dict(zip(a[a >= 0], sa[a >= 0], strict=True)) == dict(zip(b[b >= 0], sb[b >= 0], strict=True))
        assert not set(a[a >= 0]) & set(train[user].indices)  # no training item
    args = (train, test, users, user_f, item_f, events, settings)
    assert select_blend(*args, als=reused) == select_blend(*args)


def test_no_choice_without_enough_validation_users_or_when_switched_off() -> None:
    train, test = synthetic_split(True)
    model = fit_als(train, ALSParams(factors=8, iterations=3))
    events = (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0), np.zeros(0, np.float32))
    on = BlendSettings(configured={"als": 1.0}, grid=GRID, noise_z=0.0)
    off = BlendSettings(configured={"als": 1.0}, auto=False, grid=GRID, noise_z=0.0)
    assert select_blend(train, test, np.arange(5), model.user_factors, model.item_factors, events, on) is None
    assert select_blend(train, test, np.arange(300), model.user_factors, model.item_factors, events, off) is None


@pytest.mark.parametrize("winners", [1, 3, 60])
def test_the_configured_blend_stays_unless_the_gain_is_larger_than_the_noise(winners: int) -> None:
    # 200 users; ALS lists items 0..4 for everyone, popularity items 5..9. ``winners`` users
    # hold out item 5 (popularity's first), which the popularity-heavy blend ranks first and
    # the configured ALS-heavy one fifth; everyone else holds out item 11, in no list.
    n_users = 200
    scores = np.tile(np.linspace(1, 0.5, 5, dtype=np.float32), (n_users, 1))
    als = SourceLists(np.tile(np.arange(5), (n_users, 1)), scores)
    sources = {"als": als, "popularity": SourceLists(als.ids + 5, scores.copy())}
    test = matrix([[5] if u < winners else [11] for u in range(n_users)], 12)
    users = np.arange(n_users)
    configured, other = {"als": 1.0, "popularity": 0.5}, {"als": 0.5, "popularity": 1.0}
    outright = choose(sources, test, users, configured, [other], noise_z=0.0)
    guarded = choose(sources, test, users, configured, [other], noise_z=2.0)
    assert outright.weights == other and outright.ndcg > outright.configured_ndcg  # any gain wins
    # k of n users gaining alike, the rest nothing: sqrt(k (n - 1) / (n - k)) standard errors
    assert guarded.gain_z == pytest.approx(np.sqrt(winners * (n_users - 1) / (n_users - winners)))
    if winners < 4:
        assert guarded.weights == configured and guarded.ndcg == guarded.configured_ndcg
    else:
        assert guarded.weights == other and guarded.ndcg > guarded.configured_ndcg


def bundle_of(app: Flask):  # type: ignore[no-untyped-def]
    recs: Recs = app.extensions["storefront_recs"].recs
    with app.app_context():
        report = recs.train()
        assert report.published, report.message
        return report, recs.model_bundle()


def answer(app: Flask, user: str, overrides: dict[str, object] | None = None) -> list[Recommendation]:
    """For-you of a user (``overrides``: as an experiment variant with these settings)."""
    state = app.extensions["storefront_recs"]
    with app.app_context():
        return state.recommender.for_you(Visitor(user, None), 6, Filters(), overrides=overrides).items


def for_you(app: Flask, user: str, overrides: dict[str, object] | None = None) -> list[str]:
    return [r.item_id for r in answer(app, user, overrides)]


def test_training_stores_its_choice_and_for_you_serves_known_users_with_it(database_uri: str, tmp_path: Path) -> None:
    # Only popularity on the grid, and a configured blend with no weight: the choice is
    # popularity alone, which for-you must then follow for a user the model knows.
    app = make_app(database_uri, tmp_path, **SMALL, RECS_BLEND={"als": 0.0}, RECS_HASH_USER_IDS=False,
                   RECS_BLEND_GRID={"popularity": [1.0]}, RECS_MAX_PER_CATEGORY={})
    fill(app)
    report, bundle = bundle_of(app)
    assert bundle.manifest["blend"]["chosen"] is True and bundle.blend == {"popularity": 1.0}
    assert "blend" in report.timings and "ease.npz" not in bundle.manifest["files"]
    assert "user-1" in bundle.user_index
    popular = [bundle.item_ids[i] for i in np.argsort(-bundle.popularity, kind="stable")]
    served = for_you(app, "user-1")
    ranks = [popular.index(i) for i in served]
    # the most popular items in order, minus the few user-1 bought or has in the cart
    assert ranks == sorted(ranks) and ranks[-1] < 12, (served, popular[:12])
    # A variant with its own blend is served with it, not with the shop's choice.
    assert for_you(app, "user-1", overrides={"RECS_BLEND": {"als": 1.0}}) != served


def test_an_ease_blend_fits_ease_and_serves_from_it_within_the_item_limit(database_uri: str, tmp_path: Path) -> None:
    app = make_app(database_uri, tmp_path, **SMALL, RECS_BLEND={"ease": 1.0}, RECS_BLEND_AUTO=False,
                   RECS_HASH_USER_IDS=False, RECS_MAX_PER_CATEGORY={})
    fill(app)
    _, bundle = bundle_of(app)
    assert "ease.npz" in bundle.manifest["files"] and bundle.ease.nnz > 0
    # a known user's whole training history feeds EASE, also when no recent event is given
    user = bundle.user_index["user-1"]
    ids, _ = bundle.recommend_ease([], 6, None, user_idx=user)
    assert len(ids) == 6 and sum(int(bundle.item_ids[i].split("-")[1]) % 4 == 1 for i in ids) >= 5
    assert len(bundle.recommend_ease([], 6, None)[0]) == 0  # nothing known, no items: nothing
    served = for_you(app, "user-1")
    assert len(served) == 6
    # user-1 likes one kind of item (sku-1, sku-5, ...): EASE recommends that kind.
    assert sum(int(i.split("-")[1]) % 4 == 1 for i in served) >= 5, served
    assert all(r.reason == "picked for your taste" for r in answer(app, "user-1")[:5])

    small = make_app(database_uri, tmp_path / "limit", **SMALL, RECS_BLEND={"ease": 1.0}, RECS_BLEND_AUTO=False,
                     RECS_EASE_MAX_ITEMS=5)
    _, limited = bundle_of(small)
    assert "ease.npz" not in limited.manifest["files"] and limited.ease.nnz == 0


def test_ease_top_k_by_blocks_equals_sorting_every_weight() -> None:
    """The blockwise cut keeps exactly what a stable sort of all nonzero |weights| keeps,
    ties at the k-th value included (integer weights make many)."""
    rng = np.random.default_rng(3)
    b = rng.integers(-2, 3, (40, 40)).astype(np.float32)
    np.fill_diagonal(b, 0)
    active = np.sort(rng.choice(45, 40, replace=False))
    rows, cols = np.nonzero(b)
    expected = top_k_per_row(active[rows], active[cols], np.abs(b[rows, cols]), 45, 7)
    for block in (1, 6, 256):
        got = ease.top_k_abs(b, active, 45, 7, block=block)
        assert (got.indptr.tolist(), got.indices.tolist(), got.data.tolist()) == \
            (expected.indptr.tolist(), expected.indices.tolist(), expected.data.tolist())
    assert np.diff(expected.indptr).max() == 7
