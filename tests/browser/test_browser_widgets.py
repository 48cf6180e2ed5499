"""Widgets in a real browser, from a trained model: rendered by the snippet from the JSON API and
by the server with recs_widget(); impressions and clicks carry the real recommendation tokens."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import build_trained_shop

from storefront_recs import Recs
from storefront_recs.db import utcnow
from storefront_recs.tracking.identity import read_anonymous_cookie

from .conftest import LiveShop, has_visitor_cookie, wait_for

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs/screenshots/product-page.png"
CATEGORIES = {"tea": "Tea", "mug": "Mug", "book": "Book", "plant": "Plant"}
XSS_TITLE = "<img src=x onerror=alert(1)>"
CONFIG = {"RECS_CATALOG_REFRESH_SECONDS": 0, "RECS_ALS_FACTORS": 16, "RECS_ALS_ITERATIONS": 8}


def seed(recs: Recs) -> None:
    """Shoppers who each love one category; views, carts and purchases over three weeks."""
    rng = random.Random(5)
    items = [
        {"id": f"{cat}-{i}", "title": f"{name} no. {i}", "url": f"/w/{cat}-{i}", "image_url": f"/img/{cat}-{i}.svg",
         "price": 4.5 + i, "category": cat, "description": f"a fine {cat}"}
        for cat, name in CATEGORIES.items() for i in range(12)
    ]
    items.append({"id": "xss-1", "title": XSS_TITLE, "url": "javascript:alert(2)", "price": 1.0, "category": "tea"})
    recs.catalog.upsert(items)
    start = utcnow() - timedelta(days=21)
    for user in range(64):
        cat = list(CATEGORIES)[user % len(CATEGORIES)]
        for step in range(12):
            item = f"{cat}-{min(int(rng.expovariate(0.3)), 11)}"
            recs.track("view" if step % 4 else "add_to_cart", user_id=f"u{user}", item_id=item,
                       ts=start + timedelta(hours=user * 5 + step))
        recs.track("purchase", user_id=f"u{user}", items=[{"item_id": f"{cat}-0"}, {"item_id": f"{cat}-1"}],
                   ts=start + timedelta(hours=user * 5 + 13))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_trained_shop(tmp_path_factory.mktemp("trained"), seed, **CONFIG)


@pytest.fixture
def trained_shop(shop_factory: Callable[..., LiveShop], trained: Path) -> LiveShop:
    return shop_factory(copy_of=trained, **CONFIG)


def item_ids(page: Any, selector: str) -> list[str]:
    return page.eval_on_selector_all(f"{selector} [data-recs-item]", "els => els.map(e => e.dataset.recsItem)")


def expected(shop: LiveShop, method: str, *args: Any) -> list[Any]:
    recs: Recs = shop.app.extensions["storefront_recs"].recs
    with shop.app.app_context():
        return getattr(recs, method)(*args, n=4)  # type: ignore[no-any-return]


def test_widgets_show_items_from_the_trained_model(
    trained_shop: LiveShop, open_page: Callable[[LiveShop], Any], context: Any, tmp_path: Path
) -> None:
    shop = trained_shop
    page = open_page(shop)
    for seen in ("mug-3", "tea-5"):  # so that "recently viewed" has something to show
        page.goto(f"{shop.url}/w/{seen}")
        wait_for(lambda seen=seen: [e for e in shop.events("view") if e.item_id == seen], what=f"the view of {seen}")
        wait_for(lambda: has_visitor_cookie(context), what="the visitor cookie")
    with page.expect_response(lambda r: "/recs/api/v1/similar/tea-1?n=4" in r.url) as response:
        page.goto(f"{shop.url}/w/tea-1")
    answer = response.value.json()
    page.wait_for_selector("#similar-js [data-recs-item]")
    assert page.locator("#similar-js h2").is_visible()  # the shop's heading, shown with the items

    assert answer["source"] == "model" and answer["model_version"] == shop.model_version()
    similar = answer["items"]
    assert len(similar) == 4 and item_ids(page, "#similar-js") == [i["id"] for i in similar]
    first = page.locator("#similar-js [data-recs-item]").first
    assert first.locator("[data-recs-title]").text_content() == similar[0]["title"]
    image = first.locator("img")
    assert image.get_attribute("alt") == similar[0]["title"]
    assert image.get_attribute("loading") == "lazy"
    assert page.locator("#similar-js ul").get_attribute("role") == "list"
    assert first.get_attribute("data-recs-token") == similar[0]["token"]

    together = expected(shop, "bought_together", "tea-1")
    assert together and together[0].source == "model"
    assert item_ids(page, '.recs-widget[data-recs-widget="bought-together"]') == [r.item_id for r in together]
    page.wait_for_selector("#trending-js [data-recs-item]")
    assert page.locator("#trending-js li.compact strong[data-recs-title]").count() == 3  # the shop's template
    assert all(i.startswith("book-") for i in item_ids(page, "#trending-js"))  # data-category="book"
    page.wait_for_function("document.querySelectorAll('img').length && [...document.images].every(i => i.complete)")
    screenshot = SCREENSHOT if os.environ.get("RECS_UPDATE_SCREENSHOTS") == "1" else tmp_path / "product-page.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1100, "height": 900})
    page.screenshot(path=str(screenshot), full_page=True)

    # The first similar item is in view: its impression carries the token; so does its click.
    token = first.get_attribute("data-recs-token")
    impression = wait_for(lambda: [e for e in shop.events("impression") if e.context["page"].endswith("/w/tea-1")
                                   and e.context["widget"] == "similar" and e.context["position"] == 0],
                          what="the impression of the first similar item")
    assert [(e.item_id, e.context["token"]) for e in impression] == [(similar[0]["id"], token)]
    server_item = page.locator('.recs-widget[data-recs-widget="bought-together"] [data-recs-item]').first
    server_item.scroll_into_view_if_needed()
    server_impression = wait_for(lambda: [e for e in shop.events("impression") if e.context["widget"] == "bought-together"
                                          and e.context["position"] == 0], what="an impression in the server's widget")
    assert server_impression[0].context["token"] == server_item.get_attribute("data-recs-token")
    first.locator("a").click()
    page.wait_for_url(f"{shop.url}/w/{similar[0]['id']}")
    clicks = wait_for(lambda: shop.events("click"), what="the click")
    assert [(c.item_id, c.context["token"], c.context["position"]) for c in clicks] == [(similar[0]["id"], token, 0)]


def test_catalogue_text_is_rendered_as_text(
    trained_shop: LiveShop, open_page: Callable[[LiveShop], Any], context: Any
) -> None:
    """A product titled <img src=x onerror=alert(1)>, seen on widgets from both renderers; an
    alert() would open a dialog, which open_page turns into a failure."""
    shop = trained_shop
    page = open_page(shop)
    page.goto(f"{shop.url}/w/xss-1")
    wait_for(lambda: [e for e in shop.events("view") if e.item_id == "xss-1"], what="the view of the product")
    wait_for(lambda: has_visitor_cookie(context), what="the visitor cookie")
    page.goto(f"{shop.url}/w/tea-2")
    page.wait_for_selector("#recent-js [data-recs-item]")

    for widget in ("#recent-js", '.recs-widget[data-recs-widget="recently-viewed"]'):
        item = page.locator(f'{widget} [data-recs-item="xss-1"]')
        assert item.locator("[data-recs-title]").text_content() == XSS_TITLE
        assert item.locator("a").get_attribute("href") is None  # javascript: URLs are not linked
    assert page.locator('img[src="x"]').count() == 0
    assert page.evaluate("document.body.innerHTML.includes('<img src=x')") is False


def test_widgets_without_recommendations_stay_quiet(shop: LiveShop, page: Any) -> None:
    """No catalogue, no model: nothing to show, and nothing broken on the page."""
    page.goto(f"{shop.url}/w/sku-1")
    for widget in ("#similar-js", "#recent-js", "#trending-js"):
        page.wait_for_selector(f'{widget}[data-recs-state="empty"]', state="attached")
        assert page.locator(f"{widget} h2").is_hidden()  # no heading over an empty list
    assert page.locator("[data-recs-item]").count() == 0
    assert page.locator(".recs-widget").count() == 0  # server widgets render nothing


def test_an_ab_test_variant_travels_with_impressions_and_clicks(
    shop_factory: Callable[..., LiveShop], trained: Path, open_page: Callable[[LiveShop], Any], context: Any
) -> None:
    experiment = {"key": "blend", "name": "Blend", "variants": [{"name": "a", "percent": 50}, {"name": "b", "percent": 50}]}
    shop = shop_factory(copy_of=trained, **CONFIG, RECS_EXPERIMENTS=[experiment])
    page = open_page(shop)
    page.goto(f"{shop.url}/w/tea-2")  # the first visit gets the visitor its cookie
    wait_for(lambda: shop.events("view"), what="the first view")
    wait_for(lambda: has_visitor_cookie(context), what="the visitor cookie")
    page.wait_for_load_state("networkidle")
    # The page itself issued the cookie: its widget calls and event posts all use that one id.
    with shop.app.app_context():
        cookie_ids = {read_anonymous_cookie(c["value"])[0] for c in context.cookies() if c["name"] == "recs_aid"}
    assert {e.anonymous_id for e in shop.events() if e.anonymous_id} == cookie_ids
    page.goto(f"{shop.url}/w/tea-1")
    page.wait_for_selector("#similar-js [data-recs-item]")
    server_item = page.locator('.recs-widget[data-recs-widget="bought-together"] [data-recs-item]').first
    variant = server_item.get_attribute("data-recs-variant")
    assert variant in {"blend:a", "blend:b"}  # sticky: the same arm for everything this visitor sees
    assert page.locator("#similar-js [data-recs-item]").first.get_attribute("data-recs-variant") == variant

    def seen(widget: str) -> list[Any]:
        return [e for e in shop.events("impression") if e.context["widget"] == widget
                and e.context["page"].endswith("/w/tea-1") and e.context["position"] == 0]

    assert wait_for(lambda: seen("similar"), what="an impression in similar")[0].context["variant"] == variant
    server_item.scroll_into_view_if_needed()
    assert wait_for(lambda: seen("bought-together"), what="an impression in bought-together")[0].context[
        "variant"] == variant
    page.locator("#similar-js [data-recs-item] a").first.click()
    clicks = wait_for(lambda: shop.events("click"), what="the click")
    assert clicks[0].context["variant"] == variant
