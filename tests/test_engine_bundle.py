"""Model bundles: round trip, exact vs Annoy, fold-in, corrupt bundles refused, pointer and pruning."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import make_app
from flask import Flask
from test_engine_train import SMALL, fill

from storefront_recs import Recs
from storefront_recs.engine.bundle import BundleError
from storefront_recs.serving.model import ModelBundle, ServingStore


def trained(tmp_path: Path, name: str = "shop", **config: object) -> tuple[Flask, Recs]:
    app = make_app(f"sqlite:///{tmp_path / (name + '.sqlite3')}", tmp_path / name, **{**SMALL, **config})
    recs = fill(app)
    with app.app_context():
        assert recs.train().published
    return app, recs


def test_round_trip_exposes_the_serving_api(tmp_path: Path) -> None:
    app, recs = trained(tmp_path)
    model_dir = app.config["RECS_MODEL_DIR"]
    bundle = ServingStore(model_dir).current()  # a fresh process's view: everything from disk
    assert bundle is not None
    n = len(bundle.item_ids)
    assert bundle.item_index[bundle.item_ids[3]] == 3 and len(bundle.user_index) == 60
    assert bundle.item_factors.dtype == np.float32 and bundle.item_factors.shape == (n, 8)
    assert bundle.user_factors.shape == (60, 8)
    assert bundle.popularity.shape == bundle.trending.shape == (n,)
    assert bundle.popularity_by_hour.shape == (24, n) and bundle.popularity_by_weekday.shape == (7, n)
    u = bundle.user_index["user-1"]
    ids, scores = bundle.recommend_user(u, 5, filter_items=[0, 1])
    assert len(ids) == 5 and not {0, 1} & set(ids.tolist()) and np.all(np.diff(scores) <= 1e-6)
    for verb in (bundle.similar_als, bundle.similar_itemitem, bundle.bought_together):
        ids, scores = verb(2, 4)
        assert 0 < len(ids) <= 4 and 2 not in ids.tolist() and ids.dtype.kind == "i"
    # users like one kind of item (sku index % 4): item-item neighbours share it
    kind = lambda ids: [int(bundle.item_ids[i].split("-")[1]) % 4 for i in ids]  # noqa: E731
    assert kind(bundle.similar_itemitem(bundle.item_index["sku-2"], 4)[0]) == [2, 2, 2, 2]


def test_fold_in_reproduces_a_known_user_and_serves_a_new_visitor(tmp_path: Path) -> None:
    app, recs = trained(tmp_path)
    with app.app_context():
        bundle = recs.model_bundle()
    from storefront_recs.engine.data import MatrixConfig, load_interactions

    inter = load_interactions(app.extensions["storefront_recs"].engine, MatrixConfig.from_config(app.config))
    row = inter.matrix()[inter.user_ids.index("user-5")]
    vec = bundle.fold_in(row.indices, row.data)
    known = bundle.user_factors[bundle.user_index["user-5"]]
    cosine = vec @ known / (np.linalg.norm(vec) * np.linalg.norm(known))
    assert cosine > 0.9
    visitor = bundle.fold_in([bundle.item_index["sku-3"], bundle.item_index["sku-7"]], [1.0, 4.0])
    ids, _ = bundle.recommend_vector(visitor, 5, filter_items=[bundle.item_index["sku-3"]])
    assert bundle.item_index["sku-3"] not in ids.tolist()
    assert sum(int(bundle.item_ids[i].split("-")[1]) % 4 == 3 for i in ids) >= 4


def test_annoy_mode_matches_exact_search(tmp_path: Path) -> None:
    app, _ = trained(tmp_path, RECS_ANN_MODE="annoy", RECS_ANN_TREES=20)
    model_dir = app.config["RECS_MODEL_DIR"]
    annoy, exact = ServingStore(model_dir).current(), ServingStore(model_dir, ann_mode="exact").current()
    assert annoy is not None and exact is not None
    assert annoy.ann_mode == "annoy" and "als_angular.ann" in annoy.manifest["files"]
    hits = total = 0
    for item in range(0, 40, 5):
        a, _ = annoy.similar_als(item, 5)
        e, _ = exact.similar_als(item, 5)
        hits, total = hits + len(set(a.tolist()) & set(e.tolist())), total + 5
        assert item not in a.tolist()
    assert hits / total >= 0.9
    ua, sa = annoy.recommend_user(4, 5)
    ue, se = exact.recommend_user(4, 5)
    assert len(set(ua.tolist()) & set(ue.tolist())) >= 4 and sa[0] == pytest.approx(se[0], rel=1e-4)
    ca, _ = annoy.similar_content("sku-0", 5)
    ce, _ = exact.similar_content("sku-0", 5)
    assert len(set(ca) & set(ce)) >= 4


def test_a_corrupt_or_mismatched_bundle_is_refused_while_the_old_one_serves(tmp_path: Path) -> None:
    app, recs = trained(tmp_path)
    model_dir = app.config["RECS_MODEL_DIR"]
    worker = ServingStore(model_dir, check_interval=0)
    first = worker.current()
    assert first is not None
    with app.app_context():
        second = recs.train(trigger="again")
    factors = Path(model_dir, second.version, "als_item_factors.npy")
    factors.write_bytes(factors.read_bytes()[:-16])  # truncated on disk
    assert worker.current() is first
    with pytest.raises(BundleError, match="truncated"):
        ModelBundle(os.path.join(model_dir, second.version))
    with app.app_context():
        third = recs.train(trigger="again")
    manifest_path = Path(model_dir, third.version, "manifest.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["item_ids.json"] = "0" * 64  # checksum mismatch
    manifest_path.write_text(json.dumps(manifest))
    assert worker.current() is first
    Path(model_dir, third.version, "manifest.json").write_text("{not json")
    assert worker.current() is first
    with app.app_context():
        fourth = recs.train(trigger="again")
    assert worker.current().version == fourth.version


def test_workers_see_a_new_bundle_only_after_their_check_interval(tmp_path: Path) -> None:
    app, recs = trained(tmp_path)
    slow = ServingStore(app.config["RECS_MODEL_DIR"], check_interval=3600)
    old = slow.current()
    with app.app_context():
        new = recs.train()
        assert slow.current() is old  # no disk access between checks
        assert app.extensions["storefront_recs"].bundle_store is app.extensions["storefront_recs"].bundle_store
    slow.check_interval = 0
    assert slow.current().version == new.version


def test_prune_keeps_the_newest_and_the_serving_bundle(tmp_path: Path) -> None:
    app, recs = trained(tmp_path, RECS_KEEP_BUNDLES=10, RECS_ANN_MODE="annoy", RECS_ANN_TREES=2)
    store = ServingStore(app.config["RECS_MODEL_DIR"])
    with app.app_context():
        for _ in range(3):
            recs.train()
    versions = store.versions()
    assert len(versions) == 4 and store.pointer() == versions[-1]
    mapped = store.load(versions[0])  # a worker still serving the oldest, Annoy files mmapped
    store.activate(versions[0])
    removed = store.prune(keep=2)
    assert removed == [versions[1]]
    assert store.versions() == [versions[0], versions[2], versions[3]]
    store.activate(versions[3])
    assert store.prune(keep=2) == [versions[0]]
    assert len(mapped.similar_als(1, 3)[0]) == 3  # still answers from the deleted directory
