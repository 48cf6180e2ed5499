"""Limits everywhere: ``n`` on every path, ASCII-only numbers, admin forms that answer 400 (never
500), no text from a link on the dashboard, and the parts of a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_app, new_event_id
from flask import Flask, render_template_string
from test_admin import admin_client, allow_admins, csrf_of
from test_serving import get, shop, trained_shop_files, view  # noqa: F401  (fixtures)

from storefront_recs import Recs, ValidationError
from storefront_recs.serving.reasons import REASON_KINDS


@pytest.fixture
def small_max(tmp_path: Path, sqlite_uri: str) -> Flask:
    app = make_app(sqlite_uri, tmp_path, RECS_MAX_N=3, RECS_CATALOG_REFRESH_SECONDS=0)
    app.extensions["storefront_recs"].recs.catalog.upsert(
        [{"id": f"sku-{i}", "title": f"Thing {i}", "url": f"/p/{i}", "category": f"c{i}"} for i in range(10)])
    return app


def test_n_is_clamped_to_recs_max_n_on_every_path(small_max: Flask) -> None:
    recs: Recs = small_max.extensions["storefront_recs"].recs
    assert len(recs.trending(n=10**6)) == 3
    assert len(recs.similar_items("sku-1", n=50)) == 3
    assert len(recs.for_you(anonymous_id="a" * 20, n=10**30)) == 3
    assert len(recs.bought_together("sku-1", n=4)) == 3
    with small_max.test_request_context("/"):
        html = render_template_string('{{ recs_widget("trending", n=1000000) }}')
    assert html.count("data-recs-item=") == 3 or html.count("<li") == 3, html
    client = small_max.test_client()
    for path in ("trending", "similar/sku-1", "for-you", "bought-together/sku-1"):
        response = client.get(f"/recs/api/v1/{path}?n=1000")
        assert response.status_code == 200 and len(response.json["items"]) == 3, path


@pytest.mark.parametrize("n", [-1, 0, 2.5, "5", True, None])
def test_n_below_one_or_not_a_whole_number_is_a_validation_error(small_max: Flask, n: object) -> None:
    recs: Recs = small_max.extensions["storefront_recs"].recs
    with pytest.raises(ValidationError, match="n must be"):
        recs.trending(n=n)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="n must be"):
        recs.similar_items("sku-1", n=n)  # type: ignore[arg-type]
    with small_max.test_request_context("/"), pytest.raises(ValidationError, match="n must be"):
        render_template_string("{{ recs_widget('trending', n=n) }}", n=n)


@pytest.mark.parametrize("value", ["\uff15", "\u0662", "-1", "0", " 5", "5_0", "+", "1e1"])
def test_http_n_is_ascii_digits_at_least_one(small_max: Flask, value: str) -> None:
    response = small_max.test_client().get("/recs/api/v1/trending", query_string={"n": value})
    assert response.status_code == 400 and response.json["error"]


def test_a_nul_in_a_path_or_query_parameter_is_400_on_both_databases(app: Flask) -> None:
    client = app.test_client()
    for url in ("/recs/api/v1/similar/a%00b", "/recs/api/v1/bought-together/a%00b",
                "/recs/api/v1/trending?category=a%00b", "/recs/api/v1/for-you?exclude=a%00b"):
        response = client.get(url)
        assert response.status_code == 400 and "NUL" in response.json["error"], url


def test_admin_why_with_a_nul_in_the_anonymous_id_is_400_on_both_databases(app: Flask) -> None:
    allow_admins(app)
    client = admin_client(app)
    response = client.get("/recs/admin/why?anonymous_id=a%00b&item=x")
    assert response.status_code == 400
    response = client.get("/recs/admin/why?user_id=u%00&item=x%00")
    assert response.status_code == 400
    assert client.get("/recs/admin/why?anonymous_id=" + "a" * 30 + "&item=x").status_code == 200


@pytest.mark.parametrize(("variants", "message"), [
    ("[1,2]", "variant 1 must be an object"),
    ('[{"name": "a"}, "b"]', "variant 2 must be an object"),
    ('[{"name": 5}, {"name": "b"}]', "variant name"),
    ('[{"name": "a", "percent": [1]}, {"name": "b"}]', "percent must be a number"),
    ('[{"name": "a", "percent": NaN}, {"name": "b"}]', "percent must be a number"),
    ('[{"name": "a", "percent": "inf"}, {"name": "b"}]', "percent must be a number"),
    ('[{"name": "a", "overrides": [1]}, {"name": "b"}]', "overrides must be an object"),
    ('[{"name": "a", "overrides": {"RECS_SESSION_BOOST": Infinity}}, {"name": "b"}]', "finite"),
    ('{"name": "a"}', "two variants"),
    ("[" * 5000, "nested deeper"),
    ("not json", "experiment not created"),
])
def test_creating_an_experiment_from_a_bad_form_is_400_with_a_message(app: Flask, variants: str, message: str) -> None:
    allow_admins(app)
    client = admin_client(app)
    token = csrf_of(client.get("/recs/admin/").text)
    response = client.post("/recs/admin/experiments", headers={"Accept": "text/html"},
                           data={"csrf_token": token, "key": "bad", "name": "Bad", "variants": variants})
    assert response.status_code == 400, response.text
    assert message in response.text


def test_an_experiment_form_with_a_nul_is_400_on_both_databases(app: Flask) -> None:
    allow_admins(app)
    client = admin_client(app)
    token = csrf_of(client.get("/recs/admin/").text)
    response = client.post("/recs/admin/experiments", data={
        "csrf_token": token, "key": "nul", "name": "A\x00B",
        "variants": '[{"name": "a", "percent": 50}, {"name": "b", "percent": 50}]'})
    assert response.status_code == 400
    assert "NUL" in response.json["error"]
    assert app.extensions["storefront_recs"].recs.experiments() == []


def test_the_dashboard_shows_no_text_from_the_query_string(sqlite_app: Flask) -> None:
    allow_admins(sqlite_app)
    client = admin_client(sqlite_app)
    page = client.get("/recs/admin/?msg=Your+account+is+locked.+Call+0900-SCAM")
    assert page.status_code == 200
    assert "SCAM" not in page.text
    assert client.get("/recs/admin/?days=%EF%BC%95").status_code == 200  # a full-width 5: the default


def test_http_items_carry_the_reason_kind_and_the_item_it_names(shop: Flask) -> None:  # noqa: F811
    client = shop.test_client()
    view(client, "books-quiet")
    items = get(client, "for-you", n=6)["items"]
    assert items[0]["reason"] == "because you viewed Quiet books thing"
    assert (items[0]["reason_kind"], items[0]["reason_item_id"]) == ("because_you_viewed", "books-quiet")
    similar = get(client, "similar/books-1", n=4)["items"]
    assert similar and all(item["reason_kind"] in REASON_KINDS for item in similar)
    assert all(item["reason_item_id"] == "books-1" for item in similar
               if item["reason_kind"] in ("often_viewed_with", "similar_to"))
    trending = get(client, "trending", n=4)["items"]
    assert all(item["reason_kind"] in REASON_KINDS and item["reason_item_id"] is None for item in trending)
    recs: Recs = shop.extensions["storefront_recs"].recs
    rec = recs.similar_items("books-1", n=1)[0]
    assert rec.to_dict()["reason_kind"] == rec.reason_kind and rec.reason_kind in REASON_KINDS


def test_the_openapi_item_documents_reason_as_text_and_its_parts(sqlite_app: Flask) -> None:
    spec = sqlite_app.test_client().get("/recs/api/v1/openapi.json").json
    item = spec["components"]["schemas"]["Item"]["properties"]
    assert "plain text" in item["reason"]["description"]
    assert {"reason_kind", "reason_item_id"} <= set(item)


def test_an_event_post_still_works_beside_the_guards(sqlite_app: Flask) -> None:
    response = sqlite_app.test_client().post("/recs/api/v1/events", json={
        "event_id": new_event_id(), "type": "view", "item_id": "sku-1"})
    assert response.json["accepted"] == 1
