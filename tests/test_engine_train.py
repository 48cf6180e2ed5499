"""``recs.train()`` end to end on a small generated shop: report, manifest, determinism, gate,
failures, the run record and the CLI."""

from __future__ import annotations

import json
import os
import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_app
from flask import Flask
from sqlalchemy import insert, select

from storefront_recs import Recs
from storefront_recs.models import Event, ModelRun

SMALL = {"RECS_ALS_FACTORS": 8, "RECS_ALS_ITERATIONS": 4, "RECS_ALS_REFIT_ITERATIONS": 1,
         "RECS_CONTENT_DIMS": 8, "RECS_ITEMITEM_K": 10}
KINDS = ["shoe", "shirt", "hat", "bag"]
T0 = datetime(2026, 1, 1)


def shop_items(n: int = 40) -> list[dict[str, Any]]:
    return [{"id": f"sku-{i}", "title": f"{['red', 'blue'][i % 2]} {KINDS[i % 4]} model {i}",
             "category": KINDS[i % 4], "description": f"a fine {KINDS[i % 4]}", "price": 10.0 + i}
            for i in range(n)]


def shop_events(n_users: int = 60, per_user: int = 12, n_items: int = 40, seed: int = 0) -> list[dict[str, Any]]:
    """Users who each like one kind of item; baskets of the same kind in one session."""
    rng = random.Random(seed)
    rows = []
    for u in range(n_users):
        kind = u % 4
        start = T0 + timedelta(hours=u)
        for k in range(per_user):
            item = kind + 4 * rng.randrange(n_items // 4) if rng.random() < 0.85 else rng.randrange(n_items)
            rows.append({"event_id": str(uuid.uuid4()), "line_no": 0,
                         "type": rng.choice(["view", "view", "add_to_cart", "purchase"]),
                         "user_key": f"user-{u}", "anonymous_id": None, "item_id": f"sku-{item}",
                         "quantity": 1, "ts": start + timedelta(minutes=5 * k), "source": "import"})
    return rows


def fill(app: Flask, items: list[dict[str, Any]] | None = None, events: list[dict[str, Any]] | None = None) -> Recs:
    recs: Recs = app.extensions["storefront_recs"].recs
    with app.app_context():
        recs.catalog.upsert(shop_items() if items is None else items)
    rows = shop_events() if events is None else events
    if rows:
        with app.extensions["storefront_recs"].engine.begin() as conn:
            conn.execute(insert(Event), rows)
    return recs


def runs(app: Flask) -> list[Any]:
    with app.extensions["storefront_recs"].engine.connect() as conn:
        return list(conn.execute(select(ModelRun).order_by(ModelRun.id)))


@pytest.fixture
def shop(database_uri: str, tmp_path: Path) -> Flask:
    app = make_app(database_uri, tmp_path, **SMALL)
    fill(app)
    return app


def test_train_publishes_a_bundle_with_the_contracted_report_and_manifest(shop: Flask) -> None:
    recs: Recs = shop.extensions["storefront_recs"].recs
    with shop.app_context():
        report = recs.train()
        assert report.published and report.status == "published"
        assert set(report.timings) >= {"load", "als", "evaluate", "write", "publish", "total"}
        for key in ("ndcg@10", "recall@10", "recall@20", "coverage"):
            assert 0.0 <= report.metrics[key] <= 1.0
            assert "popularity_" + key in report.metrics
        # users who like one kind of item: the model must beat a best-seller list
        assert report.metrics["ndcg@10"] > report.metrics["popularity_ndcg@10"]
        bundle = recs.model_bundle()
    assert bundle is not None and bundle.version == report.version
    manifest = json.loads(Path(bundle.path, "manifest.json").read_text())
    assert manifest["version"] == report["version"]
    assert manifest["metrics"] == report.metrics
    assert set(manifest["files"]) >= {"item_ids.json", "als_item_factors.npy", "content.npz"}
    assert datetime.fromisoformat(manifest["created_at"]) == bundle.created_at
    assert manifest["data_range"]["first_event"].startswith("2026-01-01")
    [run] = runs(shop)
    assert (run.status, run.version, run.trigger) == ("published", report.version, "manual")
    assert run.metrics["ndcg@10"] == report.metrics["ndcg@10"] and run.finished_at is not None


def test_same_data_and_seed_give_the_same_model(sqlite_app: Flask, tmp_path: Path) -> None:
    first = make_app(f"sqlite:///{tmp_path / 'a.sqlite3'}", tmp_path / "a", **SMALL)
    second = make_app(f"sqlite:///{tmp_path / 'b.sqlite3'}", tmp_path / "b", **SMALL)
    bundles = []
    for app in (first, second):
        recs = fill(app)
        with app.app_context():
            report = recs.train()
            bundles.append((report, recs.model_bundle()))
    (r1, b1), (r2, b2) = bundles
    assert r1.metrics == r2.metrics
    assert np.array_equal(b1.item_factors, b2.item_factors)
    assert np.array_equal(b1.user_factors, b2.user_factors)
    assert np.array_equal(b1.content.vectors, b2.content.vectors)
    assert b1.recommend_user(0, 5)[0].tolist() == b2.recommend_user(0, 5)[0].tolist()
    third = make_app(f"sqlite:///{tmp_path / 'c.sqlite3'}", tmp_path / "c", **{**SMALL, "RECS_TRAIN_SEED": 7})
    recs = fill(third)
    with third.app_context():
        recs.train()
        assert not np.array_equal(recs.model_bundle().item_factors, b1.item_factors)


def test_quality_gate_refuses_a_worse_model_and_keeps_the_serving_one(shop: Flask) -> None:
    recs: Recs = shop.extensions["storefront_recs"].recs
    with shop.app_context():
        good = recs.train()
        # the same data with a crippled model: one factor and no iterations to speak of
        shop.config.update(RECS_ALS_FACTORS=1, RECS_ALS_ITERATIONS=1, RECS_ALS_REFIT_ITERATIONS=0,
                           RECS_ALS_REGULARIZATION=1000.0)
        bad = recs.train()
        assert bad.status == "rejected" and not bad.published
        assert "quality gate" in bad.message and good.version in bad.message
        assert recs.model_bundle().version == good.version
        assert not os.path.exists(os.path.join(shop.config["RECS_MODEL_DIR"], bad.version))
        shop.config["RECS_QUALITY_GATE_MARGIN"] = -1  # gate off
        assert recs.train().published
    statuses = [r.status for r in runs(shop)]
    assert statuses == ["published", "rejected", "published"]
    assert "quality gate" in runs(shop)[1].message


def test_cli_train_prints_a_summary_and_says_when_the_gate_refuses(shop: Flask) -> None:
    runner = shop.test_cli_runner()
    result = runner.invoke(args=["recs", "train"])
    assert result.exit_code == 0, result.output
    assert "published" in result.output and "ndcg@10" in result.output and "popularity" in result.output
    shop.config.update(RECS_ALS_FACTORS=1, RECS_ALS_ITERATIONS=1, RECS_ALS_REFIT_ITERATIONS=0,
                       RECS_ALS_REGULARIZATION=1000.0)
    result = runner.invoke(args=["recs", "train"])
    assert result.exit_code == 2
    assert "NOT PUBLISHED" in result.output and "quality gate" in result.output
    evaluated = runner.invoke(args=["recs", "evaluate"])
    assert evaluated.exit_code == 0 and "recall@20" in evaluated.output
    assert [r.trigger for r in runs(shop)] == ["cli", "cli"]  # evaluate records no run


def test_a_failed_run_is_recorded_and_the_previous_model_keeps_serving(shop: Flask) -> None:
    recs: Recs = shop.extensions["storefront_recs"].recs
    with shop.app_context():
        good = recs.train()
        shop.config["RECS_ALS_FACTORS"] = -1  # a misconfiguration that ALS itself rejects
        failed = recs.train()
        assert failed.status == "failed" and not failed.published and failed.message
        assert recs.model_bundle().version == good.version
    last = runs(shop)[-1]
    assert last.status == "failed" and last.message == failed.message and last.finished_at
    assert not [d for d in os.listdir(shop.config["RECS_MODEL_DIR"]) if d.startswith(".staging")]


@pytest.mark.parametrize("model", ["fit_content", "fit_popularity", "fit_itemitem"])
def test_a_model_fitted_beside_the_main_stages_that_fails_fails_the_run(
    shop: Flask, monkeypatch: pytest.MonkeyPatch, model: str
) -> None:
    from storefront_recs.engine import train as pipeline

    recs: Recs = shop.extensions["storefront_recs"].recs
    with shop.app_context():
        good = recs.train()

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"{model} broke")

        monkeypatch.setattr(pipeline, model, broken)
        failed = recs.train()
        assert failed.status == "failed" and failed.message == f"RuntimeError: {model} broke"
        assert recs.model_bundle().version == good.version
    assert runs(shop)[-1].status == "failed"
    assert not [d for d in os.listdir(shop.config["RECS_MODEL_DIR"]) if d.startswith(".staging")]


def test_stage_timings_come_in_pipeline_order_whichever_thread_ran_them(shop: Flask) -> None:
    from storefront_recs.engine.train import STAGES

    recs: Recs = shop.extensions["storefront_recs"].recs
    with shop.app_context():
        report = recs.train()
    stages = [name for name in report.timings if name in STAGES]
    assert stages == [name for name in STAGES if name in report.timings]
    assert {"content", "popularity", "itemitem", "blend"} <= set(stages)
    assert list(report.timings)[-1] == "total"
    assert report.timings["total"] >= report.timings["load"] + report.timings["als"]


def test_evaluate_reports_the_metrics_a_training_run_would_and_publishes_nothing(shop: Flask) -> None:
    recs: Recs = shop.extensions["storefront_recs"].recs
    with shop.app_context():
        evaluated = recs.evaluate()
        assert evaluated.status == "evaluated" and recs.model_bundle() is None
        assert "itemitem" not in evaluated.timings and "write" not in evaluated.timings
        trained = recs.train()
    assert trained.published and evaluated.metrics == trained.metrics


def test_training_leaves_the_process_blas_thread_count_as_it_found_it(shop: Flask) -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    recs: Recs = shop.extensions["storefront_recs"].recs
    with threadpool_limits(2, "blas"), shop.app_context():  # as a web worker with two BLAS threads
        before = blas_threads()
        assert before and set(before) == {2}
        recs.train()
        recs.evaluate()
        assert blas_threads() == before


def test_a_new_item_without_interactions_gets_content_neighbours(sqlite_app: Flask) -> None:
    sqlite_app.config.update(SMALL)
    items = [*shop_items(), {"id": "brand-new", "title": "blue hat deluxe", "category": "hat",
                             "description": "a fine hat"}]
    recs = fill(sqlite_app, items=items)
    with sqlite_app.app_context():
        recs.train()
        bundle = recs.model_bundle()
    assert "brand-new" in bundle.item_index  # in the vocabulary, with no events
    ids, scores = bundle.similar_content("brand-new", 5)
    assert len(ids) == 5 and "brand-new" not in ids
    hats = {item["id"] for item in shop_items() if item["category"] == "hat"}
    assert set(ids) <= hats and np.all(np.diff(scores) <= 1e-6)
    # an item upserted after training is embedded on the fly
    later = bundle.content_vector({"title": "red shoe", "category": "shoe", "description": "a fine shoe"})
    ids, _ = bundle.similar_content_vector(later, 3)
    shoes = {item["id"] for item in shop_items() if item["category"] == "shoe"}
    assert set(ids) <= shoes


def test_train_with_a_catalogue_but_no_events_still_publishes_content(sqlite_app: Flask) -> None:
    sqlite_app.config.update(SMALL)
    recs = fill(sqlite_app, events=[])
    with sqlite_app.app_context():
        report = recs.train()
        assert report.published and report.counts["interactions"] == 0
        assert len(recs.model_bundle().similar_content("sku-0", 3)[0]) == 3


def test_train_with_nothing_at_all_fails_cleanly(sqlite_app: Flask) -> None:
    recs: Recs = sqlite_app.extensions["storefront_recs"].recs
    with sqlite_app.app_context():
        report = recs.train()
        assert report.status == "failed" and "nothing to train on" in report.message
        assert recs.model_bundle() is None
