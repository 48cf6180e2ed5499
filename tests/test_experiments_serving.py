"""Variants change how recommendations are made: blend, diversity, rules (on a trained shop)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import build_trained_shop, copy_of_shop, new_event_id
from flask import Flask
from test_serving import SHOP_CONFIG, seed_shop


def two_variants(overrides: dict) -> list[dict]:
    return [{"key": "exp", "variants": [{"name": "treated", "percent": 100, "overrides": overrides},
                                        {"name": "control", "percent": 0}]}]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_trained_shop(tmp_path_factory.mktemp("exp-shop"), lambda recs: seed_shop(recs, users=40),
                              **SHOP_CONFIG)


def shop(trained: Path, tmp_path: Path, **config: object) -> Flask:
    return copy_of_shop(trained, tmp_path, **SHOP_CONFIG, **config)


def for_you_after_garden_views(app: Flask) -> dict:
    client = app.test_client()
    for item in ("garden-1", "garden-2", "garden-3"):
        posted = client.post("/recs/api/v1/events", json={"event_id": new_event_id(), "type": "view", "item_id": item})
        assert posted.json["accepted"] == 1
    answer = client.get("/recs/api/v1/for-you?n=4")
    assert answer.status_code == 200
    return answer.json  # type: ignore[no-any-return]


def test_a_popularity_only_blend_variant_answers_differently(trained: Path, tmp_path: Path) -> None:
    default = for_you_after_garden_views(shop(trained, tmp_path / "a"))
    assert default["variant"] is None
    assert any(item["reason"] != "popular right now" for item in default["items"])
    treated = for_you_after_garden_views(
        shop(trained, tmp_path / "b", RECS_EXPERIMENTS=two_variants(
            {"RECS_BLEND": {"als": 0.0, "itemitem": 0.0, "popularity": 1.0}})))
    assert treated["variant"] == "exp:treated"
    assert {item["reason"] for item in treated["items"]} == {"popular right now"}
    assert [i["id"] for i in treated["items"]] != [i["id"] for i in default["items"]]


def test_a_diversity_variant_caps_each_category(trained: Path, tmp_path: Path) -> None:
    default = for_you_after_garden_views(shop(trained, tmp_path / "a"))
    assert sum(item["id"].startswith("garden-") for item in default["items"]) == 2  # default cap: half of n
    treated = for_you_after_garden_views(
        shop(trained, tmp_path / "b", RECS_EXPERIMENTS=two_variants({"RECS_MAX_PER_CATEGORY": {"for-you": 0.25}})))
    categories = [item["id"].split("-")[0] for item in treated["items"]]
    assert len(categories) == 4 and len(set(categories)) == 4  # at most one per category


def test_a_rules_variant_boosts_a_category_on_similar(trained: Path, tmp_path: Path) -> None:
    app = shop(trained, tmp_path, RECS_EXPERIMENTS=two_variants({"RECS_PINNED": {"similar": ["books-7"]}}))
    answer = app.test_client().get("/recs/api/v1/similar/garden-1?n=4").json
    assert answer["variant"] == "exp:treated"
    assert answer["items"][0]["id"] == "books-7" and answer["items"][0]["reason"] == "featured"
