"""The tracker in a real browser: what a visitor's Chromium sends, and what the shop stores."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LiveShop,
    goto,
    has_visitor_cookie,
    wait_for,
)

QUEUE_KEY = "recs_q"


def stored_queue(page: Any) -> list[dict[str, Any]]:
    return json.loads(page.evaluate(f"localStorage.getItem('{QUEUE_KEY}') || '[]'"))


def test_a_product_view_is_recorded_exactly_once(shop: LiveShop, page: Any) -> None:
    """JSON-LD is enough (zero code); the snippet written twice and pasted again counts once."""
    page.goto(f"{shop.url}/p/sku-1")
    wait_for(lambda: shop.events("view"), what="the product view")
    wait_for(lambda: has_visitor_cookie(page.context), what="the visitor cookie")
    page.goto(f"{shop.url}/a/sku-2")  # found from data-recs-item-id this time
    wait_for(lambda: shop.events("view")[1:], what="the second product view")
    page.goto(f"{shop.url}/about")
    wait_for(lambda: len(shop.events("page_view")) == 3, what="three page views")

    views = shop.events("view")
    assert [e.item_id for e in views] == ["sku-1", "sku-2"]
    assert views[0].context["page"].endswith("/p/sku-1")  # the server may keep only the path
    assert views[0].anonymous_id and views[0].anonymous_id == views[1].anonymous_id
    # per page: a page_view, the search queued before the script loaded, and the view if any
    assert [e.type for e in shop.events("page_view") + shop.events("search")] == ["page_view"] * 3 + ["search"] * 3
    assert len(shop.events()) == 8
    assert {e.context["query"] for e in shop.events("search")} == {"queued before load"}
    assert stored_queue(page) == []


def test_add_to_cart(shop: LiveShop, page: Any) -> None:
    page.goto(f"{shop.url}/p/sku-7")
    page.fill("#qty", "3")
    page.click("#add")
    carts = wait_for(lambda: shop.events("add_to_cart"), what="the add_to_cart event")
    assert [(e.item_id, e.quantity) for e in carts] == [("sku-7", 3)]


def test_impression_and_click_carry_the_recommendation_token(shop: LiveShop, page: Any) -> None:
    page.goto(f"{shop.url}/picks")
    wait_for(lambda: shop.events("page_view"), what="the page view")
    page.locator('[data-recs-item="sku-a"]').scroll_into_view_if_needed()
    impressions = wait_for(lambda: shop.events("impression"), what="impressions")
    page.click('[data-recs-item="sku-a"] a')
    page.wait_for_url(f"{shop.url}/p/sku-a")
    clicks = wait_for(lambda: shop.events("click"), what="the click")
    wait_for(lambda: shop.events("view"), what="the view of the clicked product")

    by_item = {e.item_id: e.context for e in shop.events("impression")}
    assert impressions[0].item_id in {"sku-a", "sku-b"}
    assert by_item["sku-a"].pop("page").endswith("/picks")
    assert by_item["sku-a"] == {"widget": "trending", "slot": "home-picks", "token": "tok-a", "position": 0}
    assert "sku-far" not in by_item  # never scrolled into view
    assert [(c.item_id, c.context["token"], c.context["position"]) for c in clicks] == [("sku-a", "tok-a", 0)]


def test_events_queued_while_the_endpoint_fails_arrive_after_it_recovers(shop: LiveShop, page: Any) -> None:
    shop.failing = True
    page.goto(f"{shop.url}/p/sku-3")
    wait_for(lambda: shop.failed_posts >= 1, what="a failed post")
    assert {e["type"] for e in stored_queue(page)} == {"page_view", "view", "search"}
    page.reload()  # the first page's events survive in localStorage
    wait_for(lambda: shop.failed_posts >= 3, what="the reloaded page's failed posts")
    assert shop.events() == []
    assert len(stored_queue(page)) == 6

    shop.failing = False
    wait_for(lambda: len(shop.events()) == 6, timeout=30, what="all six events after recovery")
    assert [e.item_id for e in shop.events("view")] == ["sku-3", "sku-3"]
    wait_for(lambda: stored_queue(page) == [], what="the stored queue to empty")


def test_a_4xx_answer_is_dropped_not_retried(shop: LiveShop, page: Any) -> None:
    goto(page, f"{shop.url}/about")
    wait_for(lambda: shop.events("page_view"), what="the page view")
    posts = shop.event_posts()
    page.evaluate("recs('track', 'view', {})")  # no item_id: the server rejects it
    page.evaluate("recs('track', 'page_view', {value: -1}); recs('flush')")
    wait_for(lambda: shop.event_posts() > posts, what="the bad batch to be posted")
    page.evaluate("recs('track', 'page_view', {}); recs('flush')")
    wait_for(lambda: len(shop.events("page_view")) == 2, what="the next good event")
    assert stored_queue(page) == []
    assert len(shop.events()) == 3  # first page_view, queued search, the good page_view


def test_consent_mode_sends_and_stores_nothing_until_consent(
    shop_factory: Callable[..., LiveShop], open_page: Callable[[LiveShop], Any], context: Any
) -> None:
    shop = shop_factory(RECS_REQUIRE_CONSENT=True)
    page = open_page(shop)

    goto(page, f"{shop.url}/p/sku-1")
    page.click("#add")
    page.evaluate("recs('flush')")
    assert page.evaluate(f"localStorage.getItem('{QUEUE_KEY}')") is None
    page.evaluate("recs('consent', false)")
    page.click("#add")
    page.goto(f"{shop.url}/p/sku-2")  # pagehide: no beacon either
    page.click("#add")
    page.goto(f"{shop.url}/sentinel")
    wait_for(lambda: "GET /sentinel" in shop.requests, what="the sentinel request")
    assert shop.event_posts() == 0
    assert shop.events() == []
    assert {c["name"]: c["value"] for c in context.cookies()} == {"recs_consent": "0"}

    goto(page, f"{shop.url}/p/sku-3")
    page.evaluate("recs('consent', true)")
    page.goto(f"{shop.url}/p/sku-4")
    views = wait_for(lambda: shop.events("view"), what="events after consent")
    assert [v.item_id for v in views] == ["sku-4"]  # only what happened after consent
    assert {c["name"] for c in context.cookies()} == {"recs_consent", "recs_aid"}
    page.evaluate("recs('consent', false)")
    assert {c["name"]: c["value"] for c in context.cookies()} == {"recs_consent": "0"}


def test_consent_given_on_the_page_sends_what_it_held_in_memory(
    shop_factory: Callable[..., LiveShop], open_page: Callable[[LiveShop], Any]
) -> None:
    shop = shop_factory(RECS_REQUIRE_CONSENT=True)
    page = open_page(shop)
    goto(page, f"{shop.url}/p/sku-5")
    page.click("#add")
    page.evaluate("recs('consent', true)")
    wait_for(lambda: len(shop.events()) == 4, what="the page's events")
    assert {e.type for e in shop.events()} == {"page_view", "view", "add_to_cart", "search"}


def browse_and_post_nothing(shop: LiveShop, page: Any) -> None:
    """Browse and add to cart; events a page left unsent before are forgotten, not sent."""
    page.goto(f"{shop.url}/sentinel")
    page.evaluate(f"""localStorage.setItem('{QUEUE_KEY}', JSON.stringify(
        [{{event_id: '00000000-0000-4000-8000-000000000001', type: 'page_view'}}]))""")
    goto(page, f"{shop.url}/p/sku-1")
    page.click("#add")
    page.evaluate("recs('flush')")
    assert page.evaluate(f"localStorage.getItem('{QUEUE_KEY}')") is None
    page.goto(f"{shop.url}/sentinel")
    wait_for(lambda: shop.requests.count("GET /sentinel") == 2, what="the second sentinel request")


def test_do_not_track_is_honoured(shop_factory: Callable[..., LiveShop], playwright_instance: Any, tmp_path: Any) -> None:
    """Chromium's own "Send a Do Not Track request" setting, on a real profile."""
    profile = tmp_path / "profile"
    (profile / "Default").mkdir(parents=True)
    (profile / "Default" / "Preferences").write_text(json.dumps({"enable_do_not_track": True}))
    context = playwright_instance.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
    )
    try:
        respecting, ignoring = shop_factory(), shop_factory(RECS_RESPECT_DNT=False)
        page = context.new_page()
        assert page.evaluate("navigator.doNotTrack") == "1"
        browse_and_post_nothing(respecting, page)
        assert respecting.event_posts() == 0 and respecting.events() == []
        assert context.cookies() == []

        page.goto(f"{ignoring.url}/p/sku-1")  # a shop configured not to honour DNT
        wait_for(lambda: ignoring.events("view"), what="the view where DNT is not honoured")
    finally:
        context.close()


def test_global_privacy_control_is_honoured(shop: LiveShop, browser: Any) -> None:
    """Chromium has no GPC switch; this context sends what GPC browsers and extensions send."""
    context = browser.new_context(extra_http_headers={"Sec-GPC": "1"})
    context.add_init_script("Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})")
    try:
        page = context.new_page()
        browse_and_post_nothing(shop, page)
        assert shop.event_posts() == 0 and shop.events() == []
        assert context.cookies() == []
        # The server refuses too, for a GPC request that some other script makes.
        answer = page.evaluate("""fetch('/recs/api/v1/events', {method: 'POST', body: JSON.stringify(
            {event_id: '00000000-0000-4000-8000-000000000000', type: 'page_view'})}).then(r => r.json())""")
        assert answer["reason"] == "gpc" and shop.events() == []
    finally:
        context.close()
