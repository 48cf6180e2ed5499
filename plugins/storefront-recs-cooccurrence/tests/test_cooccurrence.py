"""The co-occurrence source on its own, and installed into a shop through its entry point."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from scipy import sparse
from storefront_recs_cooccurrence import CooccurrenceSource

from storefront_recs import Recs
from storefront_recs import db as recs_db


def test_neighbours_are_the_items_the_same_visitors_chose() -> None:
    # users 0-2 take items 0 and 1 together; user 3 takes items 2 and 3
    m = sparse.csr_matrix(np.array([[1, 1, 0, 0], [2, 1, 0, 0], [1, 3, 0, 0], [0, 0, 1, 1]], dtype=np.float32))
    source = CooccurrenceSource({})
    source.fit(m)
    ids, scores = source.similar_items(0, 3)
    assert ids.tolist() == [1] and scores.tolist() == [3.0]
    ids, scores = source.recommend(sparse.csr_matrix(np.array([[0, 0, 1, 0]], dtype=np.float32)), 2)
    assert ids[0, 0] == 3 and ids[0, 1] == -1


def test_saved_and_loaded_gives_the_same_lists(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    m = sparse.random(30, 20, density=0.2, random_state=rng, format="csr", dtype=np.float32)
    source = CooccurrenceSource({"RECS_COOCCUR_K": 5})
    source.fit(m)
    source.save(str(tmp_path))
    again = CooccurrenceSource.load(str(tmp_path), {})
    for item in range(20):
        assert [a.tolist() for a in source.similar_items(item, 5)] == [a.tolist() for a in again.similar_items(item, 5)]
    assert max(np.diff(again.matrix.indptr)) <= 5


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="RECS_COOCCUR_K"):
        CooccurrenceSource({"RECS_COOCCUR_K": 0})


def _shop(tmp_path: Path, **config: object) -> tuple[Flask, Recs]:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", TESTING=True, RECS_DATABASE_URI=f"sqlite:///{tmp_path / 'recs.db'}",
                      RECS_MODEL_DIR=str(tmp_path / "models"), **{"RECS_SOURCES": ["cooccur"], **config})
    recs = Recs(app)
    recs.admin_check(lambda: True)
    with app.app_context():
        recs_db.upgrade(app.extensions["storefront_recs"].engine)
    return app, recs


def _planted_history(recs: Recs) -> None:
    """Pairs of items (2k, 2k+1) that the same shoppers view, over 60 shoppers and 40 items."""
    recs.catalog.upsert([{"id": f"sku-{i}", "title": f"Item {i}", "url": f"/p/{i}", "price": 10.0}
                         for i in range(40)])
    rnd = random.Random(7)
    for user in range(60):
        pairs = rnd.sample(range(20), 3)
        for step, pair in enumerate(pairs):
            for item in (2 * pair, 2 * pair + 1):
                recs.track("view", user_id=f"u{user}", item_id=f"sku-{item}",
                           ts=1_700_000_000 + user * 1000 + step * 10 + item % 2)


def test_a_shop_trains_serves_and_explains_the_plugin_source(tmp_path: Path) -> None:
    app, recs = _shop(tmp_path, RECS_BLEND={"cooccur": 1.0}, RECS_BLEND_AUTO=True,
                      RECS_SIMILAR_BLEND={"cooccur": 1.0})
    _planted_history(recs)
    result = app.test_cli_runner().invoke(args=["recs", "plugins"])
    assert result.exit_code == 0, result.output
    assert any(line.split()[:2] == ["sources", "cooccur"] and line.endswith("enabled")
               for line in result.output.splitlines()), result.output
    result = app.test_cli_runner().invoke(args=["recs", "train"])
    assert result.exit_code == 0, result.output
    model_dir = tmp_path / "models"
    version = (model_dir / "CURRENT").read_text().strip()
    manifest = json.loads((model_dir / version / "manifest.json").read_text())
    assert manifest["sources"]["cooccur"]["reason"] == CooccurrenceSource.reason
    assert any(name.startswith("source-cooccur/") for name in manifest["files"])
    assert "cooccur" in manifest["blend"]["sources"]  # the blend choice scored its lists
    assert manifest["trainer"]["name"] == "implicit"
    with app.app_context():
        # a visitor who just viewed sku-10: its pair partner sku-11 comes from the plugin
        recs.track("view", anonymous_id="visitor-1", item_id="sku-10")
        picks = recs.for_you(anonymous_id="visitor-1", n=5)
        assert picks and picks[0].item_id == "sku-11" and picks[0].reason == CooccurrenceSource.reason
        similar = recs.similar_items("sku-4", n=3)
        assert similar[0].item_id == "sku-5"
    page = app.test_client().get("/recs/admin/why", query_string={"anonymous_id": "visitor-1", "item": "sku-11"})
    assert page.status_code == 200
    assert "<td>cooccur</td>" in page.get_data(as_text=True)


def test_a_missing_source_fails_the_run_and_keeps_the_model(tmp_path: Path) -> None:
    app, recs = _shop(tmp_path, RECS_SOURCES=["no-such-source"])
    _planted_history(recs)
    with app.app_context():
        report = recs.train()
    assert report.status == "failed" and "no-such-source" in (report.message or "")
    assert not os.path.exists(tmp_path / "models" / "CURRENT")
    result = app.test_cli_runner().invoke(args=["recs", "plugins"])
    assert result.exit_code != 0 and "no-such-source" in result.output
