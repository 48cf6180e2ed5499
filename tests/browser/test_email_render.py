"""Email blocks in Chromium: the inlined-CSS table laid out as designed (600 px, sized images),
and a click on a signed link over real HTTP that lands on the item's page.

``RECS_WRITE_DOCS=1`` also writes the rendering to docs/screenshots/email-block.png next to
the HTML it came from (docs/screenshots/email-block.html)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import make_app
from flask import Flask
from sqlalchemy import select

from storefront_recs import Recs
from storefront_recs.models import EmailClick

from .conftest import LiveShop, add_shop_pages

PUBLIC = "https://shop.example"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ITEMS = [
    ("tea-sencha", "Sencha green tea, 100 g", 8.9, "tea"),
    ("tea-earl", "Earl Grey & bergamot <loose leaf>", 7.5, "tea"),
    ("mug-stone", "Stoneware mug \"Morning\"", 14.0, "kitchen"),
    ("pot-glass", "Glass teapot with infuser, 1 l", 24.5, "kitchen"),
]
DOCUMENT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Your weekly picks</title></head>
<body style="margin: 0; padding: 24px 0; background-color: #eef1f4;">
{block}
</body></html>
"""


def email_shop(tmp_path: Path, public_url: str, **config: Any) -> Flask:
    app = make_app(f"sqlite:///{tmp_path / 'recs.sqlite3'}", tmp_path, RECS_PUBLIC_URL=public_url,
                   RECS_CATALOG_REFRESH_SECONDS=0, RECS_EMAIL_PRICE_FORMAT="€{:,.2f}", **config)
    add_shop_pages(app)
    recs: Recs = app.extensions["storefront_recs"].recs
    recs.catalog.upsert([{"id": i, "title": t, "url": f"/p/{i}", "image_url": f"/img/{i}.svg", "price": p,
                          "category": c} for i, t, p, c in ITEMS])
    for rank, (item_id, *_rest) in enumerate(ITEMS):  # a popularity order to show
        for n in range(len(ITEMS) - rank):
            recs.track("purchase", user_id=f"buyer-{n}", item_id=item_id)
    return app


def test_the_block_renders_as_designed_in_chromium(browser: Any, tmp_path: Path) -> None:
    app = email_shop(tmp_path, PUBLIC)
    block = app.extensions["storefront_recs"].recs.email_block(
        "reader", n=4, campaign="weekly", utm={"source": "newsletter"}, heading="Picked for you this week")
    document = DOCUMENT.format(block=block.html)
    client = app.test_client()
    foreign: list[str] = []

    def serve(route: Any) -> None:
        """The shop's images come from the app itself (no network)."""
        url = route.request.url
        if not url.startswith(PUBLIC + "/img/"):
            foreign.append(url)
            route.abort()
            return
        response = client.get(url.removeprefix(PUBLIC))
        route.fulfill(status=response.status_code, body=response.data, content_type=response.mimetype)

    page = browser.new_page(viewport={"width": 700, "height": 900}, device_scale_factor=1)
    try:
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("data:") else serve(route))
        page.set_content(document, wait_until="load")
        table = page.locator("table.recs-email")
        box = table.bounding_box()
        assert box is not None and box["width"] == 600
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.naturalWidth, e.getBoundingClientRect().width, "
                   "e.getBoundingClientRect().height, e.alt])")
        assert [alt for *_, alt in images] == [item.title for item in block.items]
        assert all(natural > 0 and width == 276 and height == 276 for natural, width, height, _ in images)
        titles = page.locator(".recs-email-title").all_inner_texts()
        assert titles == [item.title for item in block.items]
        assert page.locator(".recs-email-price").all_inner_texts() == [item.price_text for item in block.items]
        # Two items per row: the second sits right of the first, the third below it.
        boxes = [page.locator("img").nth(i).bounding_box() for i in range(4)]
        assert boxes[0]["y"] == boxes[1]["y"] < boxes[2]["y"] and boxes[0]["x"] < boxes[1]["x"]  # type: ignore[index]
        png = table.screenshot()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000
        assert foreign == []
        if os.environ.get("RECS_WRITE_DOCS") == "1":
            DOCS.mkdir(parents=True, exist_ok=True)
            (DOCS / "email-block.html").write_text(document)
            (DOCS / "email-block.png").write_bytes(png)
    finally:
        page.close()


def test_a_click_in_the_browser_lands_on_the_items_page(browser: Any, tmp_path: Path,
                                                         shop_factory: Callable[..., LiveShop]) -> None:
    live = shop_factory(RECS_CATALOG_REFRESH_SECONDS=0)
    live.app.config["RECS_PUBLIC_URL"] = live.url
    recs: Recs = live.app.extensions["storefront_recs"].recs
    recs.catalog.upsert([{"id": i, "title": t, "url": f"/p/{i}", "price": p, "category": c} for i, t, p, c in ITEMS])
    block = recs.email_block("reader", n=2, campaign="weekly", utm={"campaign": "weekly"})
    page = browser.new_page()
    try:
        page.goto(block.items[1].click_url)
        assert page.url == f"{live.url}/p/{block.items[1].item_id}?utm_campaign=weekly"
        assert page.locator("h1").inner_text() == block.items[1].item_id
    finally:
        page.close()
    with live.app.extensions["storefront_recs"].engine.connect() as conn:
        clicks = conn.execute(select(EmailClick.item_id, EmailClick.campaign)).all()
    assert clicks == [(block.items[1].item_id, "weekly")]
