"""Serving: real-time for-you, rules on every endpoint, fallbacks, cold items, isolation."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import build_trained_shop, copy_of_shop, make_app, new_event_id
from flask import Flask

from storefront_recs import Recs
from storefront_recs.db import utcnow

CATEGORIES = ("tea", "coffee", "books", "garden")
ENDPOINTS = ("similar/{item}", "for-you", "trending", "recently-viewed", "bought-together/{item}")


def seed_shop(recs: Recs, items_per_category: int = 15, users: int = 60, seed: int = 3) -> list[dict]:
    """Shoppers who each love one category; views, carts and purchases over the past weeks."""
    rng = random.Random(seed)
    items = [
        {"id": f"{cat}-{i}", "title": f"{cat.title()} thing {i}", "url": f"/p/{cat}-{i}", "price": float(5 + i),
         "category": cat, "description": f"a fine {cat} product"}
        for cat in CATEGORIES for i in range(items_per_category)
    ]
    # In the catalogue when the model trains, but never interacted with: no item-item neighbours.
    quiet = {"id": "books-quiet", "title": "Quiet books thing", "url": "/p/books-quiet", "price": 9.0,
             "category": "books", "description": "a fine books product"}
    recs.catalog.upsert([*items, quiet])
    start = utcnow() - timedelta(days=20)
    for user in range(users):
        cat = CATEGORIES[user % len(CATEGORIES)]
        for step in range(12):
            item = f"{cat}-{min(int(rng.expovariate(0.25)), items_per_category - 1)}"
            kind = "view" if step % 4 else "add_to_cart"
            recs.track(kind, user_id=f"u{user}", item_id=item, ts=start + timedelta(hours=user * 3 + step))
        recs.track("purchase", user_id=f"u{user}", item_id=f"{cat}-0", ts=start + timedelta(hours=user * 3 + 13))
    return items


SHOP_CONFIG = {"RECS_CATALOG_REFRESH_SECONDS": 0, "RECS_ALS_FACTORS": 16, "RECS_ALS_ITERATIONS": 8}


@pytest.fixture(scope="module")
def trained_shop_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded and trained shop (database and model bundle), built once per module."""
    return build_trained_shop(tmp_path_factory.mktemp("shop"), seed_shop, **SHOP_CONFIG)


@pytest.fixture
def shop(trained_shop_files: Path, tmp_path: Path) -> Flask:
    """A private copy of the trained shop for one test."""
    return copy_of_shop(trained_shop_files, tmp_path, **SHOP_CONFIG)


def get(client, path: str, **params):  # type: ignore[no-untyped-def]
    response = client.get(f"/recs/api/v1/{path}", query_string=params or None)
    assert response.status_code == 200, response.json
    return response.json


def view(client, item: str, kind: str = "view") -> None:  # type: ignore[no-untyped-def]
    response = client.post("/recs/api/v1/events", json={"event_id": new_event_id(), "type": kind, "item_id": item})
    assert response.json["accepted"] == 1


def test_a_product_view_changes_a_new_anonymous_visitors_next_for_you(shop: Flask) -> None:
    client = shop.test_client()
    before = get(client, "for-you", n=6)
    assert before["source"] == "fallback"
    view(client, "garden-3")
    after = get(client, "for-you", n=6)
    assert after["source"] == "model"
    ids = [item["id"] for item in after["items"]]
    assert ids != [item["id"] for item in before["items"]]
    # What they just looked at drives the answer: garden items lead, with the reason.
    assert sum(i.startswith("garden-") for i in ids[:4]) >= 3
    assert any("Garden thing 3" in item["reason"] for item in after["items"])
    assert "garden-3" not in ids[:1] or after["items"][0]["reason"]


def test_the_session_follows_a_change_of_interest_at_once(shop: Flask) -> None:
    client = shop.test_client()
    for item in ("garden-1", "garden-2"):
        view(client, item)
    assert get(client, "for-you", n=4)["items"][0]["id"].startswith("garden-")
    for item in ("books-1", "books-2", "books-3", "books-4"):
        view(client, item)
    top = [item["id"] for item in get(client, "for-you", n=4)["items"]]
    assert sum(i.startswith("books-") for i in top) >= 2


def test_for_you_of_a_known_user_excludes_purchases_and_cart(shop: Flask) -> None:
    recs: Recs = shop.extensions["storefront_recs"].recs
    recs.track("add_to_cart", user_id="u1", item_id="coffee-5")
    picks = [r.item_id for r in recs.for_you(user_id="u1", n=20)]
    assert len(picks) == 20
    assert "coffee-0" not in picks  # bought
    assert "coffee-5" not in picks  # in the cart
    assert all(r.source in {"model", "fallback"} and r.reason for r in recs.for_you(user_id="u1", n=20))


def test_repeat_buy_categories_may_recommend_a_purchase_again(tmp_path: Path, sqlite_uri: str) -> None:
    app = make_app(sqlite_uri, tmp_path, RECS_CATALOG_REFRESH_SECONDS=0, RECS_REPEAT_BUY_CATEGORIES=["coffee"],
                   RECS_ALS_FACTORS=8, RECS_ALS_ITERATIONS=4)
    recs: Recs = app.extensions["storefront_recs"].recs
    seed_shop(recs, users=20)
    recs.train()
    assert "coffee-0" in [r.item_id for r in recs.for_you(user_id="u1", n=40)]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_rules_and_filters_hold_on_every_endpoint(shop: Flask, endpoint: str) -> None:
    recs: Recs = shop.extensions["storefront_recs"].recs
    client = shop.test_client()
    for item in ("tea-1", "tea-2", "tea-3", "tea-4"):
        view(client, item)
    view(client, "tea-6", "add_to_cart")
    client.post("/recs/api/v1/events", json={"event_id": new_event_id(), "type": "purchase", "item_id": "tea-7"})
    recs.catalog.set_in_stock(["tea-5", "coffee-1"], False)
    recs.catalog.remove(["tea-8"])
    path = endpoint.format(item="tea-1")

    answer = get(client, path, n=10, exclude="tea-9,tea-10", exclude_more="ignored")
    ids = {item["id"] for item in answer["items"]}
    assert not ids & {"tea-5", "coffee-1", "tea-8", "tea-9", "tea-10"}
    if endpoint == "for-you":
        assert not ids & {"tea-6", "tea-7"}
    if endpoint != "recently-viewed":
        assert len(answer["items"]) == 10
        assert "tea-1" not in ids or endpoint == "for-you"
    # Repeated exclude parameters work as a comma list does.
    repeated = get(client, f"{path}?exclude=tea-2&exclude=tea-3&n=10")
    assert not {item["id"] for item in repeated["items"]} & {"tea-2", "tea-3"}

    filtered = get(client, path, n=5, category="tea", min_price=8, max_price=15)
    for item in filtered["items"]:
        assert item["id"].startswith("tea-") and 8 <= item["price"] <= 15


def test_n_items_when_the_model_is_missing(tmp_path: Path, sqlite_uri: str) -> None:
    app = make_app(sqlite_uri, tmp_path, RECS_CATALOG_REFRESH_SECONDS=0)
    recs: Recs = app.extensions["storefront_recs"].recs
    seed_shop(recs, users=4)
    client = app.test_client()
    assert client.get("/recs/health").json["status"] == "degraded"
    for endpoint in ("similar/tea-1", "for-you", "trending", "bought-together/tea-1"):
        answer = get(client, endpoint, n=7)
        assert answer["source"] == "fallback" and answer["model_version"] is None
        assert len(answer["items"]) == 7, endpoint
        assert all(item["reason"] for item in answer["items"])


def test_unknown_items_and_strangers_get_a_fallback_not_an_error(shop: Flask) -> None:
    client = shop.test_client()
    answer = get(client, "similar/no-such-item", n=5)
    assert len(answer["items"]) == 5 and answer["source"] == "fallback"
    assert len(get(client, "bought-together/no-such-item", n=5)["items"]) == 5


def test_a_new_catalogue_item_gets_similar_items_before_any_retrain(shop: Flask) -> None:
    recs: Recs = shop.extensions["storefront_recs"].recs
    recs.catalog.upsert([{"id": "garden-new", "title": "Garden thing deluxe", "category": "garden",
                          "description": "a fine garden product", "price": 12.0}])
    similar = recs.similar_items("garden-new", n=5)
    assert len(similar) == 5
    assert all(r.item_id.startswith("garden-") for r in similar)
    # And it shows up among the neighbours of a related item, through the content model.
    content_weighted = recs.similar_items("garden-14", n=40)
    assert "garden-new" in [r.item_id for r in content_weighted]


def test_stock_and_price_changes_show_in_the_next_answer(shop: Flask) -> None:
    recs: Recs = shop.extensions["storefront_recs"].recs
    first = recs.similar_items("tea-1", n=3)[0]
    recs.catalog.upsert([{"id": first.item_id, "price": 999.0}])
    assert {r.item_id: r.price for r in recs.similar_items("tea-1", n=3)}[first.item_id] == 999.0
    recs.catalog.set_in_stock([first.item_id], False)
    assert first.item_id not in [r.item_id for r in recs.similar_items("tea-1", n=10)]


def test_another_visitors_recommendations_cannot_be_read(shop: Flask) -> None:
    alice, mallory = shop.test_client(), shop.test_client()
    alice.post("/login/alice")
    for item in ("garden-5", "garden-6", "garden-7"):
        view(alice, item)
    alices = get(alice, "recently-viewed", n=5)
    assert [i["id"] for i in alices["items"]] == ["garden-7", "garden-6", "garden-5"]
    # Mallory asks for Alice's answers by naming her: the id is ignored, Mallory gets her own.
    assert get(mallory, "recently-viewed", n=5, user_id="alice")["items"] == []
    assert get(mallory, "for-you", n=5, user_id="alice")["source"] == "fallback"
    response = mallory.get("/recs/api/v1/for-you", query_string={"user_id": "alice"})
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers.getlist("Vary") == ["Cookie"]  # shared caches keep answers apart by cookie


def test_pins_boosts_and_diversity(tmp_path: Path, sqlite_uri: str) -> None:
    app = make_app(sqlite_uri, tmp_path, RECS_CATALOG_REFRESH_SECONDS=0, RECS_PINNED={"similar": ["books-9"]},
                   RECS_BOOST_CATEGORIES={"coffee": 0.0}, RECS_MAX_PER_CATEGORY={"trending": 0.25},
                   RECS_ALS_FACTORS=8, RECS_ALS_ITERATIONS=4)
    recs: Recs = app.extensions["storefront_recs"].recs
    seed_shop(recs, users=24)
    recs.train()
    similar = recs.similar_items("tea-1", n=8)
    assert similar[0].item_id == "books-9" and similar[0].reason == "featured"
    assert not any(r.item_id.startswith("coffee-") and r.source == "model" for r in similar)
    trending = recs.trending(n=8)
    model_picks = [r for r in trending if r.source == "model"]
    per_category: dict[str, int] = {}
    for r in model_picks:
        per_category[r.category or ""] = per_category.get(r.category or "", 0) + 1
    assert max(per_category.values(), default=0) <= 2


def test_health_reports_stale_when_the_model_is_old(shop: Flask) -> None:
    client = shop.test_client()
    assert client.get("/recs/health").json["status"] == "ok"
    shop.config["RECS_MAX_MODEL_AGE"] = 0
    body = client.get("/recs/health").json
    assert body["status"] == "stale" and body["model_version"] and body["model_age_seconds"] >= 0


def test_bad_query_parameters_get_a_json_error_and_the_shops_pages_stay_untouched(shop: Flask) -> None:
    client = shop.test_client()
    for query in ({"n": "many"}, {"n": 0}, {"n": -1}, {"min_price": "cheap"}, {"n": "\uff15"}, {"n": "\u0662"},
                  {"n": " 5"}, {"n": "5_0"}, {"min_price": "\uff15"}, {"max_price": "inf"}):
        response = client.get("/recs/api/v1/trending", query_string=query)
        assert response.status_code == 400 and response.is_json and response.json["error"], query
    shop_404 = client.get("/no-such-page")
    assert shop_404.status_code == 404 and not shop_404.is_json


def test_openapi_document_lists_every_endpoint(shop: Flask) -> None:
    spec = shop.test_client().get("/recs/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    for path in ("/recs/api/v1/similar/{item_id}", "/recs/api/v1/for-you", "/recs/api/v1/trending",
                 "/recs/api/v1/recently-viewed", "/recs/api/v1/bought-together/{item_id}", "/recs/api/v1/events",
                 "/recs/health"):
        assert path in spec["paths"], path
    parameters = {p["name"] for p in spec["paths"]["/recs/api/v1/trending"]["get"]["parameters"]}
    assert {"n", "category", "min_price", "max_price", "exclude"} <= parameters
    assert "Answer" in spec["components"]["schemas"]


def test_after_forget_user_every_worker_answers_as_for_a_stranger(shop: Flask, tmp_path: Path) -> None:
    recs: Recs = shop.extensions["storefront_recs"].recs
    other_worker = make_app(shop.config["RECS_DATABASE_URI"], Path(shop.config["RECS_MODEL_DIR"]).parent,
                            **SHOP_CONFIG)
    other: Recs = other_worker.extensions["storefront_recs"].recs

    def picks(api: Recs, **who: str) -> list[tuple[str, str]]:
        return [(r.item_id, r.reason) for r in api.for_you(n=8, **who)]

    stranger = picks(recs, anonymous_id="a-stranger-never-seen")
    assert picks(recs, user_id="u1") != stranger
    assert picks(other, user_id="u1") != stranger
    recs.forget_user("u1")
    assert picks(recs, user_id="u1") == stranger
    # The other worker did not see the erasure happen: it learns of it from recs_erasures.
    deadline = time.monotonic() + 10
    while picks(other, user_id="u1") != stranger and time.monotonic() < deadline:
        time.sleep(0.2)
    assert picks(other, user_id="u1") == stranger


def test_viewing_an_item_the_model_has_never_seen_still_personalises_for_you(shop: Flask) -> None:
    recs: Recs = shop.extensions["storefront_recs"].recs
    recs.catalog.upsert([{"id": "books-new", "title": "Books thing deluxe", "category": "books",
                          "description": "a fine books product", "price": 11.0}])
    client = shop.test_client()
    before = [item["id"] for item in get(client, "for-you", n=6)["items"]]
    view(client, "books-new")
    after = get(client, "for-you", n=6)
    assert [item["id"] for item in after["items"]] != before
    top = after["items"][:3]  # the for-you category cap (half of n) allows three books
    assert all(item["id"].startswith("books-") for item in top), top
    assert all(item["reason"] == "because you viewed Books thing deluxe" for item in top), top


def test_viewing_an_item_nobody_has_interacted_with_personalises_for_you(shop: Flask) -> None:
    client = shop.test_client()
    view(client, "books-quiet")
    top = get(client, "for-you", n=6)["items"][:3]
    assert all(item["id"].startswith("books-") for item in top), top
    assert all(item["reason"] == "because you viewed Quiet books thing" for item in top), top


@pytest.mark.parametrize("query", [
    "", "n=8", "n=8&utm_source=mail&user_id=alice", "n=100", "n=101", "n=08", "n=+8", "n=%208", "n=8.0", "n=0",
    "n=-1", "n=", "n=8&n=9", "n=%D9%A2", "n=99999999999", "category=tea&n=3", "exclude=tea-1&n=2", "min_price=x",
    "context_category=books", "N=5",
])
def test_the_common_query_read_without_webargs_reads_as_the_schema_does(sqlite_app: Flask, query: str) -> None:
    from storefront_recs.web.recommend import QUERY_SCHEMA, QueryError, _parse, parser

    def outcome(read):  # type: ignore[no-untyped-def]
        try:
            return read()
        except QueryError as error:
            return ("error", error.messages)

    with sqlite_app.test_request_context(f"/recs/api/v1/trending?{query}"):
        assert outcome(_parse) == outcome(lambda: parser.parse(QUERY_SCHEMA, location="query"))
